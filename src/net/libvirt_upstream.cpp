#include "net/libvirt_upstream.hpp"

#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <future>

namespace vmgate::net {
namespace {

using inventory::DomainState;
using inventory::LibvirtClient;

std::string lowercase(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

bool names(const inventory::DomainDescription& d, std::string_view name_or_uuid) {
    return d.name == name_or_uuid || d.uuid == lowercase(name_or_uuid);
}

}  // namespace

LibvirtUpstreams::LibvirtUpstreams(std::chrono::milliseconds request_timeout) : request_timeout_(request_timeout) {}

LibvirtUpstreams::~LibvirtUpstreams() {
    std::promise<void> closed;
    asio::post(api_thread_, [this, &closed] {
        stopping_ = true;
        reconnect_timer_.cancel();
        clients_.clear();
        closed.set_value();
    });
    closed.get_future().wait();
    api_thread_.join();
}

// Runs `work` on the libvirt thread; the caller waits on its own executor, at most
// request_timeout_. A result that comes too late is dropped (an fd in it is closed).
template <class Work>
auto LibvirtUpstreams::on_api_thread(Work work, std::string what) -> asio::awaitable<decltype(work())> {
    using Result = decltype(work());
    struct Pending {
        explicit Pending(const asio::any_io_executor& e, std::chrono::milliseconds timeout) : timer(e, timeout) {}
        asio::steady_timer timer;
        std::optional<Result> result;
        std::exception_ptr error;
        bool done = false;
    };
    const auto executor = co_await asio::this_coro::executor;
    auto pending = std::make_shared<Pending>(executor, request_timeout_);
    asio::post(api_thread_, [pending, executor, work = std::move(work)]() mutable {
        std::optional<Result> result;
        std::exception_ptr error;
        try {
            result.emplace(work());
        } catch (...) {
            error = std::current_exception();
        }
        asio::post(executor, [pending, result = std::move(result), error]() mutable {
            pending->result = std::move(result);
            pending->error = error;
            pending->done = true;
            pending->timer.cancel();
        });
    });
    std::error_code ignored;
    co_await pending->timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    if (!pending->done)
        throw std::runtime_error(what + ": libvirt did not answer within " +
                                 std::to_string(request_timeout_.count() / 1000) + " s");
    if (pending->error) std::rethrow_exception(pending->error);
    co_return std::move(*pending->result);
}

asio::awaitable<core::OwnedFd> LibvirtUpstreams::connect_display(std::string uri, std::string name_or_uuid,
                                                                 core::Protocol display) {
    // Named, not a temporary in the co_await expression: GCC 12 destroys such temporaries twice.
    auto open = [this, uri, name_or_uuid, display] { return client_for(uri).open_graphics(name_or_uuid, display); };
    core::OwnedFd fd = co_await on_api_thread(std::move(open), uri);
    co_return fd;
}

// ---- on the libvirt thread -------------------------------------------------------------------

LibvirtClient& LibvirtUpstreams::client_for(const std::string& uri) {
    auto it = clients_.find(uri);
    if (it != clients_.end() && it->second->alive()) return *it->second;
    if (it != clients_.end()) clients_.erase(it);
    LibvirtClient::Callbacks callbacks{
        [this, uri](std::string uuid, LibvirtClient::Change change) {
            asio::post(api_thread_, [this, uri, uuid = std::move(uuid), change] { refresh_domain(uri, uuid, change); });
        },
        [this, uri](std::string why) {
            asio::post(api_thread_, [this, uri, why = std::move(why)] { connection_closed(uri, why); });
        }};
    auto client = std::make_unique<LibvirtClient>(uri, std::move(callbacks));
    spdlog::info("connected to libvirt {}", uri);
    return *clients_.insert_or_assign(uri, std::move(client)).first->second;
}

void LibvirtUpstreams::follow(const core::LibvirtConfig& config) {
    asio::post(api_thread_, [this, config] {
        followed_ = config;
        refresh_all();
    });
}

bool LibvirtUpstreams::selected(const inventory::DomainDescription& d) const {
    return d.has_console() && (followed_.lists(d.name) || followed_.lists(d.uuid));
}

void LibvirtUpstreams::refresh_all() {
    if (stopping_) return;
    if (followed_.inventory == core::LibvirtConfig::Inventory::none) {
        std::lock_guard lock(mutex_);
        inventory_ = Inventory{followed_, false, "", {}};
        return;
    }
    std::vector<DomainState> domains;
    try {
        domains = client_for(followed_.uri).domains();
    } catch (const std::exception& e) {
        lose_inventory(e.what());
        return;
    }
    std::erase_if(domains, [this](const DomainState& d) { return !selected(d.description); });
    for (const auto& d : domains) warn_about_exposure(d.description);
    std::lock_guard lock(mutex_);
    inventory_ = Inventory{followed_, true, "", std::move(domains)};
}

void LibvirtUpstreams::refresh_domain(const std::string& uri, const std::string& uuid, LibvirtClient::Change change) {
    if (stopping_ || uri != followed_.uri || followed_.inventory == core::LibvirtConfig::Inventory::none) return;
    std::optional<DomainState> now;
    if (change != LibvirtClient::Change::undefined) {
        try {
            now = client_for(uri).domain(uuid);
        } catch (const inventory::LibvirtError&) {
            // Gone again before we asked: treat it as undefined.
        }
    }
    if (now && !selected(now->description)) now.reset();
    if (now) warn_about_exposure(now->description);
    std::lock_guard lock(mutex_);
    auto& list = inventory_.domains;
    const auto it = std::find_if(list.begin(), list.end(), [&](const DomainState& d) { return d.description.uuid == uuid; });
    if (!now) {
        if (it != list.end()) list.erase(it);
    } else if (it != list.end()) {
        *it = std::move(*now);
    } else {
        list.push_back(std::move(*now));
    }
}

void LibvirtUpstreams::connection_closed(const std::string& uri, const std::string& why) {
    clients_.erase(uri);
    spdlog::warn("libvirt {}: {}", uri, why);
    if (uri == followed_.uri && followed_.inventory != core::LibvirtConfig::Inventory::none)
        lose_inventory("libvirt " + uri + ": " + why);
}

// The inventory is empty while libvirt cannot be asked: a domain vmgate cannot reach is not listed
// as if it were. Connections still try libvirt themselves and fail with its reason.
void LibvirtUpstreams::lose_inventory(const std::string& problem) {
    {
        std::lock_guard lock(mutex_);
        inventory_ = Inventory{followed_, false, problem, {}};
    }
    spdlog::warn("libvirt inventory unavailable, retrying every {} s: {}", reconnect_interval.count(), problem);
    schedule_reconnect();
}

void LibvirtUpstreams::schedule_reconnect() {
    if (stopping_ || reconnect_pending_) return;
    reconnect_pending_ = true;
    reconnect_timer_.expires_after(reconnect_interval);
    reconnect_timer_.async_wait([this](std::error_code ec) {
        reconnect_pending_ = false;
        if (!ec) refresh_all();
    });
}

void LibvirtUpstreams::warn_about_exposure(const inventory::DomainDescription& d) {
    for (const auto& device : d.graphics) {
        const auto finding = inventory::exposure(device);
        if (finding.level == inventory::Exposure::none) continue;
        if (!warned_.insert(d.uuid + "/" + std::to_string(device.index) + ": " + finding.what).second) continue;
        if (finding.level == inventory::Exposure::network)
            spdlog::warn("VM {}: {}: its console can be reached from other hosts around vmgate; give the <graphics> "
                         "<listen type='socket'/> or <listen type='none'/>",
                         d.name, finding.what);
        else
            spdlog::warn("VM {}: {}: every local user can reach its console around vmgate; give the <graphics> "
                         "<listen type='socket'/> or <listen type='none'/>",
                         d.name, finding.what);
    }
}

// ---- from any thread -------------------------------------------------------------------------

LibvirtUpstreams::Inventory LibvirtUpstreams::inventory() const {
    std::lock_guard lock(mutex_);
    return inventory_;
}

std::optional<DomainState> LibvirtUpstreams::find(std::string_view name_or_uuid) const {
    std::lock_guard lock(mutex_);
    for (const auto& d : inventory_.domains)
        if (names(d.description, name_or_uuid)) return d;
    return std::nullopt;
}

}  // namespace vmgate::net
