// A thin, blocking C++ face of the libvirt client API: one connection, the domains behind it, and
// display sockets handed over by virDomainOpenGraphicsFD. Not thread-safe: one thread uses a
// LibvirtClient (libvirt itself may call the callbacks from its event loop thread).
#pragma once

#include "core/config.hpp"
#include "core/owned_fd.hpp"
#include "inventory/domain_xml.hpp"

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace vmgate::inventory {

// A libvirt error, with libvirt's own message.
class LibvirtError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// What the inventory knows of a domain at one moment.
struct DomainState {
    DomainDescription description;
    bool running = false;
    std::string state;  // "running", "shut off", "paused", ... as virsh says it
};

// libvirt's default event loop on a thread of its own: keepalives, connection-close and domain
// lifecycle callbacks need it. One per process; the first LibvirtClient users start it.
class LibvirtEventLoop {
public:
    LibvirtEventLoop();
    ~LibvirtEventLoop();  // stops and joins the thread
    LibvirtEventLoop(const LibvirtEventLoop&) = delete;
    LibvirtEventLoop& operator=(const LibvirtEventLoop&) = delete;

private:
    struct Thread;
    std::unique_ptr<Thread> thread_;
};

class LibvirtClient {
public:
    enum class Change { defined_or_started, stopped, undefined };
    // Called on libvirt's event loop thread: keep them short (hand the work to another thread).
    struct Callbacks {
        std::function<void(std::string uuid, Change)> domain_changed;
        std::function<void(std::string why)> closed;
    };

    // Opens `uri` read-write (virDomainOpenGraphicsFD needs it). Throws LibvirtError.
    LibvirtClient(const std::string& uri, Callbacks callbacks);
    ~LibvirtClient();
    LibvirtClient(const LibvirtClient&) = delete;
    LibvirtClient& operator=(const LibvirtClient&) = delete;

    const std::string& uri() const { return uri_; }
    bool alive() const;

    // Every defined domain (running or not).
    std::vector<DomainState> domains() const;
    // The domain with this name or UUID; throws LibvirtError ("no domain ... on URI") when none.
    DomainState domain(const std::string& name_or_uuid) const;
    // A new connection to the domain's `display`, authentication skipped (SKIPAUTH). Throws
    // LibvirtError: no such domain, not running, no such graphics device, libvirt's refusal.
    core::OwnedFd open_graphics(const std::string& name_or_uuid, core::Protocol display) const;

private:
    struct Handle;
    std::string uri_;
    std::unique_ptr<Callbacks> callbacks_;  // stable address for libvirt's opaque pointer
    std::unique_ptr<Handle> handle_;
};

}  // namespace vmgate::inventory
