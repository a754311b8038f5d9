// Upstream display connections handed over by libvirt (libvirt: upstreams), and the libvirt
// inventory of VMs ([libvirt] vms). For each SPICE channel or VNC session libvirt gives vmgate
// a connected socket with QEMU's authentication skipped (virDomainOpenGraphicsFD, SKIPAUTH), so
// the domain's display needs no password that anyone knows.
//
// libvirt's client calls block, so they all run on one thread of this class; a request waits at
// most `request_timeout` for it, so a hung libvirtd delays a client by that much and no more.
// One connection per URI, opened on first use and again after libvirtd closed it. The inventory
// follows domain lifecycle events: domains defined, started, stopped or undefined later show up
// (or go) without a reload, and a lost connection is retried every few seconds.
#pragma once

#include "core/config.hpp"
#include "core/owned_fd.hpp"
#include "inventory/libvirt_client.hpp"

#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace vmgate::net {

class LibvirtUpstreams {
public:
    static constexpr std::chrono::milliseconds default_request_timeout{5000};
    static constexpr std::chrono::seconds reconnect_interval{2};

    explicit LibvirtUpstreams(std::chrono::milliseconds request_timeout = default_request_timeout);
    // Closes the libvirt connections and stops both threads. Destroy this before the io_contexts
    // of the coroutines that wait on it.
    ~LibvirtUpstreams();
    LibvirtUpstreams(const LibvirtUpstreams&) = delete;
    LibvirtUpstreams& operator=(const LibvirtUpstreams&) = delete;

    // A new connection to the `display` of domain `name_or_uuid` over `uri`. From any thread;
    // resumes on the caller's executor. Throws std::runtime_error with libvirt's reason (no such
    // domain, not running, no such device, libvirtd unreachable, no answer in time).
    asio::awaitable<core::OwnedFd> connect_display(std::string uri, std::string name_or_uuid,
                                                   core::Protocol display);

    // From now on the inventory lists what `config` selects (none: nothing). At start and at
    // every reload; returns at once, the listing follows on the libvirt thread.
    void follow(const core::LibvirtConfig& config);

    struct Inventory {
        core::LibvirtConfig config;  // what it follows
        bool connected = false;
        std::string problem;         // why it is not connected
        std::vector<inventory::DomainState> domains;
    };
    Inventory inventory() const;
    // The inventory's domain with this name or UUID, if any.
    std::optional<inventory::DomainState> find(std::string_view name_or_uuid) const;

private:
    // Everything below runs on api_thread_ only, except what `mutex_` guards.
    inventory::LibvirtClient& client_for(const std::string& uri);
    void refresh_all();
    void refresh_domain(const std::string& uri, const std::string& uuid, inventory::LibvirtClient::Change change);
    void connection_closed(const std::string& uri, const std::string& why);
    void lose_inventory(const std::string& problem);
    void schedule_reconnect();
    bool selected(const inventory::DomainDescription& d) const;
    void warn_about_exposure(const inventory::DomainDescription& d);
    template <class Work>
    auto on_api_thread(Work work, std::string what) -> asio::awaitable<decltype(work())>;

    const std::chrono::milliseconds request_timeout_;
    inventory::LibvirtEventLoop event_loop_;  // outlives the clients that use it
    asio::thread_pool api_thread_{1};
    std::map<std::string, std::unique_ptr<inventory::LibvirtClient>> clients_;  // by URI
    asio::steady_timer reconnect_timer_{api_thread_};
    bool reconnect_pending_ = false;
    bool stopping_ = false;
    core::LibvirtConfig followed_;
    std::set<std::string> warned_;  // "uuid/index: what", each exposure warned about once

    mutable std::mutex mutex_;
    Inventory inventory_;  // guarded by mutex_
};

}  // namespace vmgate::net
