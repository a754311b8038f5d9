#include "session/registry.hpp"

#include <algorithm>

namespace vmgate::session {

Session::Session(std::uint64_t id, Origin origin, EndObserver on_end)
    : id_(id), origin_(std::move(origin)), on_end_(std::move(on_end)), last_input_(origin_.started) {}

std::optional<std::uint32_t> Session::spice_session_id() const {
    std::lock_guard lock(mutex_);
    return spice_session_id_;
}

void Session::set_spice_session_id(std::uint32_t id) {
    std::lock_guard lock(mutex_);
    spice_session_id_ = id;
}

bool Session::add_channel(ChannelHandle channel) {
    std::lock_guard lock(mutex_);
    if (!end_text_.empty()) return false;
    channels_.push_back(std::move(channel));
    return true;
}

void Session::remove_channel(std::uint64_t conn_id) {
    std::lock_guard lock(mutex_);
    std::erase_if(channels_, [&](const ChannelHandle& c) { return c.conn_id == conn_id; });
}

bool Session::end(EndReason reason, const std::string& detail) {
    const std::string text = std::string(to_string(reason)) + ": " + detail;
    std::vector<ChannelHandle> to_close;
    {
        std::lock_guard lock(mutex_);
        if (!end_text_.empty()) return false;
        end_text_ = text;
        to_close.swap(channels_);
    }
    if (on_end_) on_end_(*this, reason, detail);
    for (auto& c : to_close) c.close(text);  // outside the lock: close may re-enter remove_channel
    return true;
}

bool Session::ended() const {
    std::lock_guard lock(mutex_);
    return !end_text_.empty();
}

std::string Session::end_text() const {
    std::lock_guard lock(mutex_);
    return end_text_;
}

std::vector<std::string> Session::channel_names() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> names;
    for (const auto& c : channels_) names.push_back(c.channel);
    return names;
}

std::uint64_t Session::bytes_from_client() const {
    std::lock_guard lock(mutex_);
    std::uint64_t sum = 0;
    for (const auto& c : channels_) sum += c.traffic->from_client();
    return sum;
}

std::uint64_t Session::bytes_to_client() const {
    std::lock_guard lock(mutex_);
    std::uint64_t sum = 0;
    for (const auto& c : channels_) sum += c.traffic->to_client();
    return sum;
}

// Every client message on the inputs channel is the user acting (keys, pointer): the channel
// has no acknowledgement traffic of its own, so its byte count is an input counter.
void Session::observe_input(SteadyTime now) {
    std::lock_guard lock(mutex_);
    std::uint64_t input = 0;
    // SPICE's inputs channel carries nothing but input; a VNC connection counts its input messages.
    for (const auto& c : channels_) input += c.channel == "inputs" ? c.traffic->from_client() : c.traffic->inputs();
    if (input != input_bytes_seen_) last_input_ = now;
    input_bytes_seen_ = input;
}

SteadyTime Session::last_input() const {
    std::lock_guard lock(mutex_);
    return last_input_;
}

bool may_take_seat(core::SeatPolicy seat, const core::Identity& holder, const core::Identity& newcomer) {
    switch (seat) {
    case core::SeatPolicy::takeover: return true;
    case core::SeatPolicy::deny: return false;
    case core::SeatPolicy::same_user: return holder.same_principal(newcomer);
    }
    return false;
}

Registry::Registry(Session::EndObserver on_end) : on_end_(std::move(on_end)) {}

std::variant<Registry::Claimed, Registry::Refused> Registry::claim(Origin origin, core::SeatPolicy seat) {
    Claimed claimed;
    {
        std::lock_guard lock(mutex_);
        auto [first, last] = by_vm_.equal_range(origin.vm);
        for (auto it = first; it != last; ++it) {
            if (it->second->ended()) continue;
            if (!may_take_seat(seat, it->second->who(), origin.who)) return Refused{it->second};
            claimed.replaced.push_back(it->second);
        }
        for (const auto& old : claimed.replaced)
            std::erase_if(by_vm_, [&](const auto& entry) { return entry.second == old; });
        claimed.session = std::make_shared<Session>(next_id_++, std::move(origin), on_end_);
        by_vm_.emplace(claimed.session->vm(), claimed.session);
    }
    for (auto& old : claimed.replaced)
        old->end(EndReason::taken_over, "by " + claimed.session->who().to_string() + " (session " +
                                            std::to_string(claimed.session->id()) + ")");
    return claimed;
}

std::shared_ptr<Session> Registry::find(const std::string& vm, std::uint32_t spice_session_id) const {
    std::lock_guard lock(mutex_);
    auto [first, last] = by_vm_.equal_range(vm);
    for (auto it = first; it != last; ++it)
        if (it->second->spice_session_id() == spice_session_id && !it->second->ended()) return it->second;
    return nullptr;
}

std::vector<std::shared_ptr<Session>> Registry::live() const {
    std::vector<std::shared_ptr<Session>> out;
    {
        std::lock_guard lock(mutex_);
        for (const auto& [vm, s] : by_vm_)
            if (!s->ended()) out.push_back(s);
    }
    std::ranges::sort(out, {}, &Session::id);
    return out;
}

void Registry::remove(const Session& session) {
    std::lock_guard lock(mutex_);
    std::erase_if(by_vm_, [&](const auto& entry) { return entry.second.get() == &session; });
}

}  // namespace vmgate::session
