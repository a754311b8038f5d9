// Live sessions and seats. A SPICE session is one main channel plus the channels that presented
// its session id. A VM's seat is held from the moment a main channel is authorized (before QEMU
// sees it) until its session ends, so two newcomers can never both pass the seat check.
// Shared by all worker threads and the supervisor; everything else in a connection stays on
// its own thread.
#pragma once

#include "core/cidr.hpp"
#include "core/config.hpp"
#include "core/identity.hpp"
#include "session/end_reason.hpp"
#include "session/expiry.hpp"
#include "session/traffic.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace vmgate::session {

// A relayed connection as the registry sees it. `close` must be safe to call from any thread
// (it posts to the connection's own executor).
struct ChannelHandle {
    std::uint64_t conn_id = 0;
    std::string channel;  // "main", "display", ...
    std::shared_ptr<const Traffic> traffic;
    std::function<void(const std::string& reason)> close;
};

// What admitted a session and where it came from; fixed for its life.
struct Origin {
    std::string vm;
    core::Identity who;
    std::optional<core::IpAddress> source;
    std::string source_text;  // "IP:PORT" of the main channel
    std::chrono::system_clock::time_point since;
    SteadyTime started;
    std::optional<std::uint64_t> ticket_id;
    bool view_only = false;
    std::string rule;  // the allow rule that admitted the main channel, in words
};

class Session {
public:
    using EndObserver = std::function<void(const Session&, EndReason, const std::string& detail)>;

    Session(std::uint64_t id, Origin origin, EndObserver on_end);

    std::uint64_t id() const { return id_; }
    const Origin& origin() const { return origin_; }
    const std::string& vm() const { return origin_.vm; }
    const core::Identity& who() const { return origin_.who; }

    // QEMU's id for the session, known once MAIN_INIT has passed.
    std::optional<std::uint32_t> spice_session_id() const;
    void set_spice_session_id(std::uint32_t id);

    // False when the session has already ended: the caller must refuse the channel.
    bool add_channel(ChannelHandle channel);
    void remove_channel(std::uint64_t conn_id);
    // Closes every channel still attached with "CODE: detail" and tells the observer, once.
    // Later add_channel calls fail. False when the session had already ended.
    bool end(EndReason reason, const std::string& detail);
    bool ended() const;
    // "CODE: detail" of the end, "" while the session runs.
    std::string end_text() const;

    std::vector<std::string> channel_names() const;
    std::uint64_t bytes_from_client() const;
    std::uint64_t bytes_to_client() const;
    // Notes input seen since the last call (client bytes on the inputs channel, input messages
    // counted by other channels) as made at `now`.
    void observe_input(SteadyTime now);
    SteadyTime last_input() const;

private:
    const std::uint64_t id_;
    const Origin origin_;
    const EndObserver on_end_;
    mutable std::mutex mutex_;
    std::optional<std::uint32_t> spice_session_id_;
    std::string end_text_;  // "CODE: detail" once ended; never empty after end()
    std::vector<ChannelHandle> channels_;
    std::uint64_t input_bytes_seen_ = 0;
    SteadyTime last_input_;
};

// Whether a newcomer gets a seat that `holder` has: pure, so seat rules are tested alone.
bool may_take_seat(core::SeatPolicy seat, const core::Identity& holder, const core::Identity& newcomer);

class Registry {
public:
    explicit Registry(Session::EndObserver on_end = {});

    struct Claimed {
        std::shared_ptr<Session> session;
        std::vector<std::shared_ptr<Session>> replaced;  // already ended, reason taken_over
    };
    struct Refused {
        std::shared_ptr<Session> holder;
    };
    // Takes ORIGIN.vm's seat for a new session under the VM's seat policy.
    std::variant<Claimed, Refused> claim(Origin origin, core::SeatPolicy seat);

    std::shared_ptr<Session> find(const std::string& vm, std::uint32_t spice_session_id) const;
    std::vector<std::shared_ptr<Session>> live() const;  // not ended, in id order
    void remove(const Session& session);

private:
    mutable std::mutex mutex_;
    Session::EndObserver on_end_;
    std::uint64_t next_id_ = 1;
    std::multimap<std::string, std::shared_ptr<Session>> by_vm_;
};

}  // namespace vmgate::session
