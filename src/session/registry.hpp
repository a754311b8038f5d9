// Live SPICE sessions: one main channel plus the channels that presented its session id.
// Shared by all worker threads; everything else in a connection stays on its own thread.
#pragma once

#include "core/identity.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace vmgate::session {

// A relayed connection as the registry sees it. `close` must be safe to call from any thread
// (it posts to the connection's own executor).
struct ChannelHandle {
    std::uint64_t conn_id = 0;
    std::string channel;  // "main", "display", ...
    std::function<void(const std::string& reason)> close;
};

class Session {
public:
    Session(std::string vm, core::Identity who, std::uint32_t spice_session_id,
            std::optional<std::uint64_t> ticket_id);

    const std::string& vm() const { return vm_; }
    const core::Identity& who() const { return who_; }
    std::uint32_t spice_session_id() const { return spice_session_id_; }
    std::optional<std::uint64_t> ticket_id() const { return ticket_id_; }

    // False when the session has already ended: the caller must refuse the channel.
    bool add_channel(ChannelHandle channel);
    void remove_channel(std::uint64_t conn_id);
    // Closes every channel still attached; later add_channel calls fail.
    void end(const std::string& reason);
    bool ended() const;

private:
    const std::string vm_;
    const core::Identity who_;
    const std::uint32_t spice_session_id_;
    const std::optional<std::uint64_t> ticket_id_;
    mutable std::mutex mutex_;
    bool ended_ = false;
    std::vector<ChannelHandle> channels_;
};

class Registry {
public:
    // Registers a session whose id QEMU just announced (SPICE_MSG_MAIN_INIT). QEMU itself
    // disconnects a VM's previous client when a new main channel authenticates, so the
    // sessions this one replaced are returned, already ended, for the audit log.
    std::pair<std::shared_ptr<Session>, std::vector<std::shared_ptr<Session>>> open(
        std::shared_ptr<Session> session, const std::string& takeover_reason);
    std::shared_ptr<Session> find(const std::string& vm, std::uint32_t spice_session_id) const;
    void remove(const Session& session);

private:
    mutable std::mutex mutex_;
    std::multimap<std::string, std::shared_ptr<Session>> by_vm_;
};

}  // namespace vmgate::session
