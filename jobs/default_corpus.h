// The text `ringwise train` learns from when --data is not given: Debian's fortune cookies
// (package 'fortunes'), a few MB of English that a small model visibly learns in minutes.
#pragma once

namespace rw {

inline constexpr char kDefaultCorpus[] = "/usr/share/games/fortunes";

}  // namespace rw
