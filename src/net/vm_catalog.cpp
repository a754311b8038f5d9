#include "net/vm_catalog.hpp"

#include <asio/co_spawn.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

namespace vmgate::net {
namespace {

using nlohmann::json;

// Longer than the QMP and libvirt request deadlines, so their own reasons come through.
constexpr auto probe_timeout = std::chrono::seconds(6);

struct Probe {
    core::UpstreamConfig upstream;
    core::Protocol display;
    json* slot;  // in the reply being built
};

asio::awaitable<void> try_upstream(Probe probe, UpstreamBrokers brokers) {
    try {
        const auto executor = co_await asio::this_coro::executor;
        auto display = co_await connect_upstream(executor, probe.upstream, probe.display, brokers);
        (*probe.slot)["reachable"] = true;
        probe.slot->erase("problem");
    } catch (const std::exception& e) {
        (*probe.slot)["problem"] = e.what();
    }
}

// Every probe at once; returns when all ended or probe_timeout passed. The slots belong to
// `reply`, which the completion handlers keep alive for probes that end later.
asio::awaitable<void> run_probes(std::vector<Probe> probes, UpstreamBrokers brokers, std::shared_ptr<json> reply) {
    if (probes.empty()) co_return;
    const auto executor = co_await asio::this_coro::executor;
    auto all_done = std::make_shared<asio::steady_timer>(executor, probe_timeout);
    auto remaining = std::make_shared<std::size_t>(probes.size());
    for (auto& probe : probes)
        asio::co_spawn(executor, try_upstream(probe, brokers), [all_done, remaining, reply](std::exception_ptr) {
            if (--*remaining == 0) all_done->cancel();
        });
    std::error_code ignored;
    co_await all_done->async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

// The upstream a client's connection to this display would use: the [[vm]]'s, or for a VM of the
// libvirt inventory the domain's own device (none when the domain has no such display).
std::optional<core::UpstreamConfig> upstream_for(const core::VmConfig* vm, const inventory::DomainState* domain,
                                                 core::Protocol display, const std::string& uri) {
    std::optional<core::UpstreamConfig> written;
    if (vm) written = display == core::Protocol::spice ? vm->spice : vm->vnc;
    const bool from_inventory =
        !vm || (written && written->kind == core::UpstreamConfig::Kind::libvirt && written->domain == vm->name);
    if (!from_inventory || !domain) return written;
    if (!domain->description.find(display)) return std::nullopt;
    core::UpstreamConfig upstream;
    upstream.kind = core::UpstreamConfig::Kind::libvirt;
    upstream.uri = uri;
    upstream.domain = domain->description.uuid;
    upstream.text = "libvirt:" + domain->description.name;
    return upstream;
}

std::string_view inventory_text(core::LibvirtConfig::Inventory inventory) {
    switch (inventory) {
    case core::LibvirtConfig::Inventory::none: return "none";
    case core::LibvirtConfig::Inventory::all: return "all";
    case core::LibvirtConfig::Inventory::named: return "named";
    }
    return "none";
}

}  // namespace

asio::awaitable<json> describe_vms(std::shared_ptr<const Generation> generation, UpstreamBrokers brokers) {
    const auto inventory = brokers.libvirt.inventory();
    // [[vm]] sections first (with their domain when the inventory has it), then inventory domains
    // no [[vm]] names.
    std::vector<std::pair<const core::VmConfig*, const inventory::DomainState*>> rows;
    for (const auto& vm : generation->config.vms) {
        const auto domain = std::find_if(inventory.domains.begin(), inventory.domains.end(), [&](const auto& d) {
            return d.description.name == vm.name || d.description.uuid == vm.name;
        });
        rows.emplace_back(&vm, domain == inventory.domains.end() ? nullptr : &*domain);
    }
    for (const auto& d : inventory.domains)
        if (std::none_of(rows.begin(), rows.end(), [&](const auto& r) { return r.second == &d; }))
            rows.emplace_back(nullptr, &d);

    auto reply = std::make_shared<json>(json{{"ok", true}, {"vms", json::array()}});
    std::vector<std::optional<core::UpstreamConfig>> upstreams;  // spice, vnc of each row
    for (const auto& [vm, domain] : rows) {
        json entry{{"name", vm ? vm->name : domain->description.name},
                   {"source", vm ? "config" : "libvirt"},
                   {"allow_rules", vm ? vm->allow.size() : 0}};
        if (domain) {
            entry["domain"] = domain->description.name;
            entry["uuid"] = domain->description.uuid;
            entry["state"] = domain->state;
        }
        for (const core::Protocol display : {core::Protocol::spice, core::Protocol::vnc}) {
            auto upstream = upstream_for(vm, domain, display, inventory.config.uri);
            entry[std::string(core::to_string(display))] =
                upstream ? json{{"upstream", upstream->text}, {"reachable", false}, {"problem", "no answer within 6 s"}}
                         : json(nullptr);
            upstreams.push_back(std::move(upstream));
        }
        (*reply)["vms"].push_back(std::move(entry));
    }
    std::vector<Probe> probes;  // slots taken once the array no longer grows
    for (std::size_t i = 0; i < upstreams.size(); ++i) {
        if (!upstreams[i]) continue;
        const auto display = i % 2 == 0 ? core::Protocol::spice : core::Protocol::vnc;
        probes.push_back({*upstreams[i], display, &(*reply)["vms"][i / 2][std::string(core::to_string(display))]});
    }
    co_await run_probes(std::move(probes), brokers, reply);
    (*reply)["libvirt"] = {{"uri", inventory.config.uri},
                           {"inventory", inventory_text(inventory.config.inventory)},
                           {"connected", inventory.connected},
                           {"problem", inventory.problem}};
    co_return *reply;
}

}  // namespace vmgate::net
