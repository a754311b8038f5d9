#include "cli/vv_file.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <vector>

namespace vmgate::cli {

namespace {

bool reaches(const core::ListenerConfig& l, std::string_view vm, bool proxy) {
    if (l.protocol != core::Protocol::spice || !l.tls) return false;
    if (proxy) return l.route == core::Route::connect;
    return l.route != core::Route::fixed || l.vm == vm;
}

// Fixed listeners first (no DNS name per VM, no proxy), then SNI, then CONNECT.
int preference(const core::ListenerConfig& l) {
    switch (l.route) {
        case core::Route::fixed: return 0;
        case core::Route::sni: return 1;
        case core::Route::connect: return 2;
    }
    return 3;
}

bool offers_ticket_alone(const core::ListenerConfig& l) {
    return l.auth.size() == 1 && l.auth.front() == core::AuthMethod::ticket;
}

bool suits(const core::ListenerConfig& l, bool ticket) {
    return ticket ? offers_ticket_alone(l) : l.offers(core::AuthMethod::sasl);
}

// 0.0.0.0 or [::]: a listening address that names no host a client could connect to.
bool unspecified(const std::string& host) {
    in_addr v4{};
    in6_addr v6{};
    if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return v4.s_addr == htonl(INADDR_ANY);
    return ::inet_pton(AF_INET6, host.c_str(), &v6) == 1 && std::memcmp(&v6, &in6addr_any, sizeof v6) == 0;
}

std::string no_listener_error(const std::vector<const core::ListenerConfig*>& reaching, std::string_view vm,
                              bool ticket, bool proxy) {
    if (reaching.empty() && proxy)
        return "--proxy: no SPICE listener with route = \"connect\" (an HTTP CONNECT proxy port) in the configuration";
    if (reaching.empty())
        return fmt::format("no SPICE listener with tls = true reaches {} (route \"fixed\" with vm = \"{}\", "
                           "route \"sni\" or route \"connect\")",
                           vm, vm);
    if (ticket)
        return fmt::format("--ticket: no SPICE TLS listener of {} offers tickets alone (auth = [\"ticket\"]); "
                           "spice-gtk always chooses SASL when a server offers it, so the ticket would never be "
                           "used",
                           vm);
    return fmt::format("no SPICE TLS listener of {} offers SASL (its listeners offer tickets alone): use --ticket",
                       vm);
}

}  // namespace

std::string keyfile_string(std::string_view value) {
    std::string out;
    for (std::size_t i = 0; i < value.size(); ++i) {
        const char c = value[i];
        if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else if (c == '\r') out += "\\r";
        else if (c == '\t') out += "\\t";
        else if (c == ' ' && i == 0) out += "\\s";
        else out += c;
    }
    return out;
}

std::string render_vv(const VvFile& file) {
    std::string out = "[virt-viewer]\ntype=spice\n";
    const auto line = [&out](std::string_view key, std::string_view value) {
        out += fmt::format("{}={}\n", key, keyfile_string(value));
    };
    line("host", file.host);
    line("tls-port", std::to_string(file.tls_port));
    line("ca", file.ca_pem);
    line("host-subject", file.host_subject);
    line("title", file.title);
    line("secure-channels", "all");
    if (!file.proxy.empty()) line("proxy", file.proxy);
    if (!file.username.empty()) line("username", file.username);
    if (!file.password.empty()) {
        line("password", file.password);
        line("delete-this-file", "1");  // a one-time ticket is spent once used
    }
    return out;
}

const core::ListenerConfig* choose_listener(const core::Config& config, std::string_view vm, bool ticket, bool proxy,
                                            std::string& error) {
    std::vector<const core::ListenerConfig*> reaching;
    for (const auto& l : config.listeners)
        if (reaches(l, vm, proxy)) reaching.push_back(&l);
    std::stable_sort(reaching.begin(), reaching.end(),
                     [](const auto* a, const auto* b) { return preference(*a) < preference(*b); });
    const auto found =
        std::find_if(reaching.begin(), reaching.end(), [ticket](const auto* l) { return suits(*l, ticket); });
    if (found != reaching.end()) return *found;
    error = no_listener_error(reaching, vm, ticket, proxy);
    return nullptr;
}

std::optional<std::string> client_host(const core::ListenerConfig& listener, std::string_view vm,
                                       std::string_view host_override, std::string_view certificate_dns_name,
                                       std::string& error) {
    if (listener.route == core::Route::sni) {
        const std::string routed = std::string(vm) + listener.sni_suffix;
        if (host_override.empty()) return routed;
        error = fmt::format("--host: the listener {} chooses the VM by TLS server name, so clients of {} must "
                            "connect to {}",
                            listener.address, vm, routed);
        return std::nullopt;
    }
    if (!host_override.empty()) return std::string(host_override);
    if (!unspecified(listener.host)) return listener.host;
    if (!certificate_dns_name.empty()) return std::string(certificate_dns_name);
    error = fmt::format("the listener {} names no host for clients and [tls] cert has no DNS subjectAltName: "
                        "give --host NAME",
                        listener.address);
    return std::nullopt;
}

std::string proxy_url(std::string_view host, std::uint16_t port) {
    if (host.find(':') != std::string_view::npos) return fmt::format("http://[{}]:{}", host, port);  // IPv6
    return fmt::format("http://{}:{}", host, port);
}

bool usable_as_connect_host(std::string_view vm) {
    return !vm.empty() && std::all_of(vm.begin(), vm.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '-' || c == '.' || c == '_';
    });
}

}  // namespace vmgate::cli
