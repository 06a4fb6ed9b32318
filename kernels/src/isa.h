// Internal: the instruction-set table (isa_table.inc) as C++, for the dispatcher and each path.
#pragma once

#include "edgeprune/kernels.h"

// EP_IF_BUILT_<arch>(...) keeps its arguments only in builds that compile that arch's paths
// (CMakeLists.txt defines EP_ARCH_<arch>), so a row's CPU check never meets another compiler.
#define EP_IF_BUILT_any(...) __VA_ARGS__
#ifdef EP_ARCH_x86
#define EP_IF_BUILT_x86(...) __VA_ARGS__
#else
#define EP_IF_BUILT_x86(...)
#endif
#ifdef EP_ARCH_arm64
#define EP_IF_BUILT_arm64(...) __VA_ARGS__
#else
#define EP_IF_BUILT_arm64(...)
#endif

namespace ep {

struct IsaRow {
  ep_isa id;
  const char* name;
  int lanes;         // floats per vector register
  int accumulators;  // vector accumulators a tile may keep in registers
};

// Data only, no code: safe to share between sources compiled with different ISA flags.
inline constexpr IsaRow kIsaRows[] = {
#define EP_ISA_ROW(id, name, arch, lanes, acc, flags, check) {id, name, lanes, acc},
#include "isa_table.inc"
#undef EP_ISA_ROW
};
inline constexpr int kIsaCount = int(sizeof kIsaRows / sizeof kIsaRows[0]);

// kIsaRows[isa] must be the row of isa, for every row.
#define EP_ISA_ROW(value, ...) static_assert(kIsaRows[value].id == value, "isa_table.inc: rows out of ep_isa order");
#include "isa_table.inc"
#undef EP_ISA_ROW

}  // namespace ep
