#include "session/registry.hpp"

namespace vmgate::session {

Session::Session(std::string vm, core::Identity who, std::uint32_t spice_session_id,
                 std::optional<std::uint64_t> ticket_id)
    : vm_(std::move(vm)), who_(std::move(who)), spice_session_id_(spice_session_id),
      ticket_id_(ticket_id) {}

bool Session::add_channel(ChannelHandle channel) {
    std::lock_guard lock(mutex_);
    if (ended_) return false;
    channels_.push_back(std::move(channel));
    return true;
}

void Session::remove_channel(std::uint64_t conn_id) {
    std::lock_guard lock(mutex_);
    std::erase_if(channels_, [&](const ChannelHandle& c) { return c.conn_id == conn_id; });
}

void Session::end(const std::string& reason) {
    std::vector<ChannelHandle> to_close;
    {
        std::lock_guard lock(mutex_);
        if (ended_) return;
        ended_ = true;
        to_close.swap(channels_);
    }
    for (auto& c : to_close) c.close(reason);  // outside the lock: close may re-enter remove
}

bool Session::ended() const {
    std::lock_guard lock(mutex_);
    return ended_;
}

std::pair<std::shared_ptr<Session>, std::vector<std::shared_ptr<Session>>> Registry::open(
    std::shared_ptr<Session> session, const std::string& takeover_reason) {
    std::vector<std::shared_ptr<Session>> replaced;
    {
        std::lock_guard lock(mutex_);
        auto [first, last] = by_vm_.equal_range(session->vm());
        for (auto it = first; it != last; ++it) replaced.push_back(it->second);
        by_vm_.erase(first, last);
        by_vm_.emplace(session->vm(), session);
    }
    for (auto& old : replaced) old->end(takeover_reason);
    return {std::move(session), std::move(replaced)};
}

std::shared_ptr<Session> Registry::find(const std::string& vm, std::uint32_t spice_session_id) const {
    std::lock_guard lock(mutex_);
    auto [first, last] = by_vm_.equal_range(vm);
    for (auto it = first; it != last; ++it)
        if (it->second->spice_session_id() == spice_session_id && !it->second->ended())
            return it->second;
    return nullptr;
}

void Registry::remove(const Session& session) {
    std::lock_guard lock(mutex_);
    auto [first, last] = by_vm_.equal_range(session.vm());
    for (auto it = first; it != last; ++it)
        if (it->second.get() == &session) {
            by_vm_.erase(it);
            return;
        }
}


}  // namespace vmgate::session
