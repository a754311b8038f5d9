#include "doctor/host.hpp"

#include "doctor/cert_checks.hpp"
#include "doctor/domain_checks.hpp"
#include "doctor/qemu_cmdline.hpp"
#include "doctor/qemu_conf.hpp"
#include "doctor/sasl_checks.hpp"
#include "inventory/domain_xml.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <grp.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <variant>

namespace vmgate::doctor {
namespace {

namespace fs = std::filesystem;

void append(Findings& to, Findings more) {
    to.insert(to.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
}

std::optional<std::string> read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string user_name(uid_t uid) {
    const passwd* pw = getpwuid(uid);
    return pw ? pw->pw_name : "";
}

std::string group_name(gid_t gid) {
    const group* gr = getgrgid(gid);
    return gr ? gr->gr_name : "";
}

FileFacts stat_file(const std::string& path) {
    FileFacts facts;
    facts.path = path;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        if (errno != ENOENT) facts.error = std::strerror(errno);
        return facts;
    }
    facts.exists = true;
    facts.mode = st.st_mode & 07777;
    facts.uid = st.st_uid;
    facts.gid = st.st_gid;
    facts.owner = user_name(st.st_uid);
    facts.group = group_name(st.st_gid);
    return facts;
}

Account account_of(const passwd& pw) {
    return {pw.pw_name, pw.pw_uid, pw.pw_gid, group_name(pw.pw_gid)};
}

void check_tls(const core::Config& config, const HostOptions& o, Report& report) {
    if (!config.tls.key.empty()) {
        const std::string key = host_path(o.root, config.tls.key);
        append(report.findings, check_private_file(stat_file(key), o.account,
                                                   {"tls-key", "the TLS private key ([tls] key)",
                                                    "set [tls] key to the server key file (PEM), or create it there",
                                                    Area::tls}));
        report.checked.push_back("TLS key " + key);
    }
    if (config.tls.cert.empty()) return;
    const std::string cert = host_path(o.root, config.tls.cert);
    const FileFacts facts = stat_file(cert);
    append(report.findings, check_certificate_file(facts, o.account));
    report.checked.push_back("certificate " + cert);
    if (!facts.exists) return;
    const auto text = read_text(cert);
    auto parsed = text ? read_certificate(*text) : std::string("cannot read it");
    if (const auto* why = std::get_if<std::string>(&parsed)) {
        report.findings.push_back({Severity::error, Area::tls, "tls-cert-invalid", cert,
                                   "the certificate file is unusable: " + *why,
                                   "put the server certificate in PEM form (BEGIN CERTIFICATE) in " + cert});
        return;
    }
    const auto& facts_of_cert = std::get<CertificateFacts>(parsed);
    append(report.findings, check_certificate_dates(facts_of_cert, cert, o.now));
    append(report.findings, check_certificate_names(facts_of_cert, cert, config));
}

void check_sasl(const core::Config& config, const HostOptions& o, Report& report) {
    if (const std::string sasldb = sasldb_in_use(config); !sasldb.empty()) {
        const std::string path = host_path(o.root, sasldb);
        append(report.findings,
               check_private_file(stat_file(path), o.account,
                                  {"sasldb", "the sasldb ([sasl] sasldb)", "vmgate users add USER (creates it)",
                                   Area::sasl}));
        report.checked.push_back("sasldb " + path);
    }
    const auto services = pam_services_needed(config);
    if (services.empty()) return;
    const std::string pam_dir = host_path(o.root, "/etc/pam.d");
    append(report.findings, check_pam_services(config, pam_dir, [](const std::string& p) { return fs::exists(p); }));
    report.checked.push_back(fmt::format("PAM service(s) {}", fmt::join(services, ", ")));
}

void check_libvirt_conf(const HostOptions& o, Report& report) {
    const std::string path = host_path(o.root, "/etc/libvirt/qemu.conf");
    const auto text = read_text(path);
    if (!text) return;
    const auto conf = parse_libvirt_conf(*text);
    append(report.findings, check_qemu_conf(conf, path));
    report.checked.push_back(path);
    for (const Display d : {Display::spice, Display::vnc}) {
        const std::string file = qemu_sasl_file(conf, d);
        if (file.empty()) continue;
        const std::string sasl_path = host_path(o.root, file);
        append(report.findings, check_qemu_sasl(d, sasl_path, read_text(sasl_path)));
        report.checked.push_back(sasl_path);
    }
}

bool all_digits(const std::string& s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return c >= '0' && c <= '9'; });
}

void check_processes(const HostOptions& o, Report& report) {
    const fs::path proc = host_path(o.root, "/proc");
    std::error_code ec;
    unsigned qemus = 0;
    for (const auto& entry : fs::directory_iterator(proc, ec)) {
        const std::string pid = entry.path().filename().string();
        if (!all_digits(pid)) continue;
        const auto raw = read_text((entry.path() / "cmdline").string());  // gone, or not ours to read
        if (!raw) continue;
        QemuProcess process{pid, split_cmdline(*raw)};
        if (!is_qemu(process.argv)) continue;
        ++qemus;
        append(report.findings, check_qemu_process(process));
    }
    report.checked.push_back(fmt::format("{} QEMU process(es)", qemus));
}

void check_domain_files(const HostOptions& o, Report& report) {
    const fs::path dir = host_path(o.root, "/etc/libvirt/qemu");
    std::error_code ec;
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir, ec))
        if (entry.is_regular_file() && entry.path().extension() == ".xml") files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
        const auto text = read_text(file.string());
        if (!text) {
            report.findings.push_back({Severity::warning, Area::domain, "domain-xml-unreadable", file.string(),
                                       fmt::format("cannot read it ({}): its displays were not checked",
                                                   std::strerror(errno)),
                                       "run vmgate doctor as root (libvirt keeps these files 0600)"});
            continue;
        }
        const auto parsed = inventory::parse_domain_xml(*text);
        if (!parsed.domain) {
            report.findings.push_back({Severity::warning, Area::domain, "domain-xml-invalid", file.string(),
                                       "not a domain description: " + parsed.error,
                                       "virsh define a valid domain, or move the file out of " + dir.string()});
            continue;
        }
        append(report.findings, check_domain(*parsed.domain, file.string()));
    }
    if (!files.empty()) report.checked.push_back(fmt::format("{} domain file(s) in {}", files.size(), dir.string()));
}

void ignore_libvirt_error(void*, virErrorPtr) {}

std::string libvirt_message() {
    const virErrorPtr error = virGetLastError();
    return error && error->message ? error->message : "unknown libvirt error";
}

struct ConnectClose {
    void operator()(virConnectPtr c) const { virConnectClose(c); }
};

void check_libvirt_domains(const HostOptions& o, Report& report) {
    if (o.libvirt_uri.empty()) return;
    virSetErrorFunc(nullptr, ignore_libvirt_error);  // errors are reported as findings, not on stderr
    std::unique_ptr<virConnect, ConnectClose> conn(virConnectOpenReadOnly(o.libvirt_uri.c_str()));
    if (!conn) {
        report.findings.push_back({Severity::error, Area::domain, "libvirt-unreachable", o.libvirt_uri,
                                   "cannot connect read-only: " + libvirt_message(),
                                   "start libvirtd (systemctl start libvirtd) or give --libvirt the right URI"});
        return;
    }
    virDomainPtr* list = nullptr;
    const int count = virConnectListAllDomains(conn.get(), &list, 0);
    if (count < 0) {
        report.findings.push_back({Severity::error, Area::domain, "libvirt-unreachable", o.libvirt_uri,
                                   "cannot list domains: " + libvirt_message(),
                                   "run vmgate doctor as a user libvirt lets list domains (root)"});
        return;
    }
    for (int i = 0; i < count; ++i) {
        if (char* xml = virDomainGetXMLDesc(list[i], 0)) {
            const auto parsed = inventory::parse_domain_xml(xml);
            std::free(xml);
            if (parsed.domain) append(report.findings, check_domain(*parsed.domain, o.libvirt_uri));
        }
        virDomainFree(list[i]);
    }
    std::free(list);
    report.checked.push_back(fmt::format("{} domain(s) on {}", count, o.libvirt_uri));
}

}  // namespace

std::string host_path(const std::string& root, const std::string& path) {
    if (root.empty() || path.empty() || path.front() != '/') return path;
    std::string base = root;
    while (base.size() > 1 && base.back() == '/') base.pop_back();
    return base == "/" ? path : base + path;
}

std::optional<Account> find_account(const std::string& name, std::string& error) {
    if (!name.empty()) {
        const passwd* pw = getpwnam(name.c_str());
        if (pw) return account_of(*pw);
        error = fmt::format("no user \"{}\" on this host: --user names the user vmgate runs as", name);
        return std::nullopt;
    }
    if (const passwd* pw = getpwnam("vmgate")) return account_of(*pw);
    if (const passwd* pw = getpwuid(geteuid())) return account_of(*pw);
    error = fmt::format("the current user (uid {}) has no name: give --user", geteuid());
    return std::nullopt;
}

Report examine_host(const core::Config& config, const HostOptions& options) {
    Report report;
    check_tls(config, options, report);
    check_sasl(config, options, report);
    check_libvirt_conf(options, report);
    check_processes(options, report);
    check_domain_files(options, report);
    check_libvirt_domains(options, report);
    report.checked.push_back("as user " + options.account.name);
    return report;
}

}  // namespace vmgate::doctor
