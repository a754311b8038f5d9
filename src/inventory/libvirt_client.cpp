#include "inventory/libvirt_client.hpp"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <mutex>
#include <thread>

namespace vmgate::inventory {
namespace {

// libvirt prints every error to stderr unless told otherwise; vmgate reports them itself.
void ignore_error(void*, virErrorPtr) {}

void initialize_libvirt() {
    static std::once_flag once;
    std::call_once(once, [] {
        virInitialize();
        virSetErrorFunc(nullptr, ignore_error);
        // Must come before the first connection is opened for it to get keepalives and events.
        virEventRegisterDefaultImpl();
    });
}

std::string last_error() {
    const virErrorPtr error = virGetLastError();
    return error && error->message ? error->message : "unknown libvirt error";
}

struct DomainDeleter {
    void operator()(virDomainPtr d) const { virDomainFree(d); }
};
using Domain = std::unique_ptr<virDomain, DomainDeleter>;

bool is_uuid(const std::string& text) {
    if (text.size() != 36) return false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? text[i] != '-' : !std::isxdigit(static_cast<unsigned char>(text[i]))) return false;
    }
    return true;
}

std::string state_name(int state) {
    switch (state) {
    case VIR_DOMAIN_RUNNING: return "running";
    case VIR_DOMAIN_BLOCKED: return "idle";
    case VIR_DOMAIN_PAUSED: return "paused";
    case VIR_DOMAIN_SHUTDOWN: return "in shutdown";
    case VIR_DOMAIN_SHUTOFF: return "shut off";
    case VIR_DOMAIN_CRASHED: return "crashed";
    case VIR_DOMAIN_PMSUSPENDED: return "suspended by guest power management";
    default: return "no state";
    }
}

DomainState describe(virDomainPtr domain) {
    char* xml = virDomainGetXMLDesc(domain, 0);
    if (xml == nullptr) throw LibvirtError(last_error());
    auto parsed = parse_domain_xml(xml);
    std::free(xml);
    if (!parsed.domain) throw LibvirtError("libvirt sent a domain description vmgate cannot read: " + parsed.error);
    DomainState result;
    result.description = std::move(*parsed.domain);
    int state = VIR_DOMAIN_NOSTATE;
    int reason = 0;
    if (virDomainGetState(domain, &state, &reason, 0) == 0) result.state = state_name(state);
    result.running = virDomainIsActive(domain) == 1;
    return result;
}

LibvirtClient::Change change_of(int event) {
    switch (event) {
    case VIR_DOMAIN_EVENT_UNDEFINED: return LibvirtClient::Change::undefined;
    case VIR_DOMAIN_EVENT_STOPPED: return LibvirtClient::Change::stopped;
    default: return LibvirtClient::Change::defined_or_started;
    }
}

int on_lifecycle(virConnectPtr, virDomainPtr domain, int event, int, void* opaque) {
    char uuid[VIR_UUID_STRING_BUFLEN];
    if (virDomainGetUUIDString(domain, uuid) != 0) return 0;
    const auto& callbacks = *static_cast<const LibvirtClient::Callbacks*>(opaque);
    if (callbacks.domain_changed) callbacks.domain_changed(uuid, change_of(event));
    return 0;
}

void on_close(virConnectPtr, int reason, void* opaque) {
    const auto& callbacks = *static_cast<const LibvirtClient::Callbacks*>(opaque);
    const char* why = reason == VIR_CONNECT_CLOSE_REASON_EOF         ? "libvirtd closed the connection"
                      : reason == VIR_CONNECT_CLOSE_REASON_KEEPALIVE ? "libvirtd stopped answering keepalives"
                      : reason == VIR_CONNECT_CLOSE_REASON_ERROR     ? "connection error"
                                                                     : "closed";
    if (callbacks.closed) callbacks.closed(why);
}

}  // namespace

// ---- event loop ------------------------------------------------------------------------------

struct LibvirtEventLoop::Thread {
    std::atomic<bool> stopping{false};
    std::thread thread;
};

LibvirtEventLoop::LibvirtEventLoop() : thread_(std::make_unique<Thread>()) {
    initialize_libvirt();
    thread_->thread = std::thread([t = thread_.get()] {
        while (!t->stopping.load()) virEventRunDefaultImpl();
    });
}

LibvirtEventLoop::~LibvirtEventLoop() {
    thread_->stopping = true;
    // A zero timeout makes the loop run one more round, see `stopping` and return.
    const int wake = virEventAddTimeout(
        0, [](int timer, void*) { virEventRemoveTimeout(timer); }, nullptr, nullptr);
    thread_->thread.join();
    if (wake >= 0) virEventRemoveTimeout(wake);
}

// ---- client ----------------------------------------------------------------------------------

struct LibvirtClient::Handle {
    virConnectPtr connection = nullptr;
    int lifecycle_callback = -1;
};

LibvirtClient::LibvirtClient(const std::string& uri, Callbacks callbacks)
    : uri_(uri), callbacks_(std::make_unique<Callbacks>(std::move(callbacks))), handle_(std::make_unique<Handle>()) {
    initialize_libvirt();
    handle_->connection = virConnectOpen(uri.c_str());
    if (handle_->connection == nullptr) throw LibvirtError("libvirt " + uri + ": " + last_error());
    // Notices a libvirtd that went away without closing the socket within about 15 s.
    virConnectSetKeepAlive(handle_->connection, 5, 3);
    virConnectRegisterCloseCallback(handle_->connection, on_close, callbacks_.get(), nullptr);
    handle_->lifecycle_callback = virConnectDomainEventRegisterAny(
        handle_->connection, nullptr, VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle),
        callbacks_.get(), nullptr);
}

LibvirtClient::~LibvirtClient() {
    if (handle_->lifecycle_callback >= 0)
        virConnectDomainEventDeregisterAny(handle_->connection, handle_->lifecycle_callback);
    virConnectUnregisterCloseCallback(handle_->connection, on_close);
    virConnectClose(handle_->connection);
}

bool LibvirtClient::alive() const { return virConnectIsAlive(handle_->connection) == 1; }

std::vector<DomainState> LibvirtClient::domains() const {
    virDomainPtr* list = nullptr;
    const int count = virConnectListAllDomains(handle_->connection, &list, 0);
    if (count < 0) throw LibvirtError("libvirt " + uri_ + ": " + last_error());
    std::vector<Domain> owned(list, list + count);
    std::free(list);
    std::vector<DomainState> result;
    for (const Domain& d : owned) {
        try {
            result.push_back(describe(d.get()));
        } catch (const LibvirtError&) {
            // Undefined between the listing and the description: it is simply gone.
        }
    }
    return result;
}

namespace {

Domain lookup(virConnectPtr connection, const std::string& uri, const std::string& name_or_uuid) {
    virDomainPtr d = is_uuid(name_or_uuid) ? virDomainLookupByUUIDString(connection, name_or_uuid.c_str())
                                           : virDomainLookupByName(connection, name_or_uuid.c_str());
    if (d != nullptr) return Domain(d);
    const virErrorPtr error = virGetLastError();
    if (error && error->code == VIR_ERR_NO_DOMAIN)
        throw LibvirtError("no libvirt domain \"" + name_or_uuid + "\" on " + uri);
    throw LibvirtError("libvirt " + uri + ": " + last_error());
}

}  // namespace

DomainState LibvirtClient::domain(const std::string& name_or_uuid) const {
    return describe(lookup(handle_->connection, uri_, name_or_uuid).get());
}

core::OwnedFd LibvirtClient::open_graphics(const std::string& name_or_uuid, core::Protocol display) const {
    const Domain d = lookup(handle_->connection, uri_, name_or_uuid);
    const DomainState state = describe(d.get());
    const std::string who = "libvirt domain \"" + state.description.name + "\"";
    if (!state.running) throw LibvirtError(who + " is not running (" + state.state + ")");
    const GraphicsDevice* device = state.description.find(display);
    if (device == nullptr)
        throw LibvirtError(who + " has no " + (display == core::Protocol::spice ? "SPICE" : "VNC") + " graphics device");
    const int fd = virDomainOpenGraphicsFD(d.get(), device->index, VIR_DOMAIN_OPEN_GRAPHICS_SKIPAUTH);
    if (fd < 0) throw LibvirtError(who + ": " + last_error());
    return core::OwnedFd(fd);
}

}  // namespace vmgate::inventory
