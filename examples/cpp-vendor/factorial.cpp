// factorial: reads one JSON event per line on stdin ({"n": 30}), answers one JSON line on stdout.
// Uses GMP's C++ bindings (libgmpxx.so.4), which Amazon Linux 2023 does not ship.
#include <gmpxx.h>
#include <iostream>
#include <string>

int main() {
    std::ios::sync_with_stdio(false);
    std::string line;
    while (std::getline(std::cin, line)) {
        auto key = line.find("\"n\"");
        auto colon = key == std::string::npos ? key : line.find(':', key);
        if (colon == std::string::npos) {
            std::cout << "{\"error\":\"expected an event like {\\\"n\\\": 30}\"}" << std::endl;
            continue;
        }
        unsigned long n = std::stoul(line.substr(colon + 1));
        mpz_class f;
        mpz_fac_ui(f.get_mpz_t(), n);
        // operator<< for mpz_class lives in libgmpxx.so.4 (the rest of gmpxx.h is inline)
        std::cout << "{\"n\":" << n << ",\"factorial\":\"" << f << "\"}" << std::endl;  // endl flushes
    }
}
