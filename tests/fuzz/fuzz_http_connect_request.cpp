// http::ConnectRequestReader fed arbitrary client bytes. Checks: no crash or sanitizer report;
// chunking never changes the outcome; a request names a non-empty host and a port; every
// refusal renders as a complete HTTP error reply whose body length matches Content-Length.
#include "fuzz_util.hpp"
#include "http/connect_request.hpp"

#include <string>
#include <variant>

namespace {

using namespace vmgate::http;
using vmgate::fuzz::check;

std::string outcome(const ConnectRequestReader& reader) {
    if (!reader.result()) return "incomplete";
    if (const auto* target = std::get_if<ConnectTarget>(&*reader.result()))
        return "connect " + target->host + " " + std::to_string(target->port);
    const auto& rejection = std::get<Rejection>(*reader.result());
    return std::to_string(static_cast<unsigned>(rejection.status)) + " " + rejection.detail;
}

void check_result(const ConnectRequestReader& reader) {
    if (!reader.result()) return;
    if (const auto* target = std::get_if<ConnectTarget>(&*reader.result())) {
        check(!target->host.empty() && target->port != 0);
        return;
    }
    const std::string reply = error_reply(std::get<Rejection>(*reader.result()));
    const auto head_end = reply.find("\r\n\r\n");
    check(reply.starts_with("HTTP/1.1 ") && head_end != std::string::npos);
    const auto length_at = reply.find("Content-Length: ");
    check(length_at != std::string::npos && length_at < head_end);
    check(std::stoul(reply.substr(length_at + 16)) == reply.size() - head_end - 4);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto input = vmgate::fuzz::split_input(data, size);
    ConnectRequestReader whole;
    whole.feed(input.stream);
    check_result(whole);
    ConnectRequestReader chunked;
    for (auto piece : vmgate::fuzz::chunk(input.stream, input.seed)) chunked.feed(piece);
    check_result(chunked);
    check(outcome(whole) == outcome(chunked));
    return 0;
}
