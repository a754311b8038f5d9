// The demo's own certificate authority and localhost server certificate, made with the OpenSSL 3
// API. Valid files are reused across runs so that a user who trusted the demo CA once keeps
// trusting it.
#pragma once

#include <filesystem>
#include <string_view>
#include <sys/types.h>

namespace vmgate::cli {

inline constexpr std::string_view demo_ca_common_name = "vmgate demo CA";
inline constexpr std::string_view demo_server_host = "localhost";
inline constexpr std::string_view demo_server_ip = "127.0.0.1";

struct DemoPkiFiles {
    std::filesystem::path ca_cert;  // what clients are told to trust
    // Kept (mode 0600) so that an expired or damaged server certificate can be reissued under
    // the CA the user already trusts.
    std::filesystem::path ca_key;
    std::filesystem::path server_cert;
    std::filesystem::path server_key;  // mode 0600: the gateway refuses keys others can read
};

struct DemoPki {
    DemoPkiFiles files;
    bool ca_created = false;      // false: an existing, valid CA was reused
    bool server_created = false;  // false: an existing, valid server certificate was reused
};

// PKI_DIR/{ca-cert,ca-key,server-cert,server-key}.pem
DemoPkiFiles demo_pki_files(const std::filesystem::path& pki_dir);

// Creates PKI_DIR (0700) and whatever is missing, invalid or about to expire; reuses the rest.
// Throws std::runtime_error naming the file and the OpenSSL reason.
DemoPki ensure_demo_pki(const std::filesystem::path& pki_dir);

// Creates DIR with MODE when missing (parents with the default mode); an existing DIR is left
// as it is. Throws std::runtime_error.
void create_private_dir(const std::filesystem::path& dir, mode_t mode = 0700);

// Writes FILE through a temporary file and a rename, so a crash never leaves half a key or half
// a config behind, with exactly MODE (not MODE & ~umask). Throws std::runtime_error.
void write_file_atomically(const std::filesystem::path& file, std::string_view content, mode_t mode);

}  // namespace vmgate::cli
