// Protocol v2 codec: the bytes on the wire between the core and the bridge.
//
// Usage:
//   aegis::frame_writer w;                               // owns a reusable buffer
//   w.begin(aegis::frame_type::txn, epoch, 0);
//   w.add_txn(seq, t, offload_ns);                       // up to max_records times
//   std::span<const std::byte> bytes = w.finish();       // checksum written here
//
//   aegis::decoded_frame f = aegis::decode_frame(bytes); // never throws, never reads past `bytes`
//   if (!f.ok()) count(f.reject);                        // by reason
//   for (std::size_t i = 0; i < f.header.count; ++i) use(f.verdict_at(i));
//
// docs/PROTOCOL.md is the contract: every offset and size below is written
// there, and a change to either is a change of `protocol_version`. Integers are
// little-endian on the wire; we copy with memcpy on a little-endian host
// (static_assert below), so no field is ever read through a misaligned pointer.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "aegis/env.hpp"

namespace aegis {

static_assert(std::endian::native == std::endian::little,
              "the codec copies little-endian wire integers straight into host integers");

/// `A E G S` read as a little-endian u32.
inline constexpr std::uint32_t protocol_magic = 0x53474541;
/// Wire version; docs/PROTOCOL.md describes exactly this version.
inline constexpr std::uint8_t protocol_version = 2;
/// Fixed header size in bytes.
inline constexpr std::size_t header_bytes = 32;
/// Most records one frame may carry.
inline constexpr std::size_t max_records = 1024;
/// TXN record size in bytes.
inline constexpr std::size_t txn_record_bytes = 64;
/// VERDICT record size in bytes.
inline constexpr std::size_t verdict_record_bytes = 24;
/// HELLO status record size in bytes (a HELLO carries exactly one).
inline constexpr std::size_t hello_record_bytes = 32;
/// VERDICT `flags` bit: the model failed on this record; the decision is the bridge's fail-safe, the score 0.
inline constexpr std::uint8_t verdict_flag_unscored = 0x01;
/// Largest valid frame (a full TXN frame); also ZMQ_MAXMSGSIZE on receiving sockets.
inline constexpr std::size_t max_frame_bytes = header_bytes + max_records * txn_record_bytes;
static_assert(max_frame_bytes == 65568, "docs/PROTOCOL.md states max_frame_bytes = 65568");

/// Frame type byte.
enum class frame_type : std::uint8_t {
  txn = 1,      ///< core -> bridge, TXN records.
  hello = 2,    ///< bridge -> core, no records; announces/heartbeats an incarnation.
  verdict = 3,  ///< bridge -> core, VERDICT records.
};

/// Record size of a frame type (0 for unknown types).
constexpr std::size_t record_bytes(frame_type t) noexcept {
  switch (t) {
    case frame_type::txn: return txn_record_bytes;
    case frame_type::hello: return hello_record_bytes;
    case frame_type::verdict: return verdict_record_bytes;
  }
  return 0;
}

/// Why a frame (or, for `forged`, a record) was rejected. The order is the
/// order of the checks in docs/PROTOCOL.md; `wrong_epoch` and `forged` are
/// decided by the core, not by `decode_frame`.
enum class reject_reason : std::uint8_t {
  truncated,     ///< Shorter than the header.
  oversized,     ///< Longer than max_frame_bytes.
  bad_magic,     ///< Magic is not `AEGS`.
  bad_version,   ///< Version is not protocol_version.
  bad_type,      ///< Unknown type byte.
  bad_length,    ///< Length != header + count * record size, count > max_records, or a HELLO with records.
  bad_checksum,  ///< XXH64 mismatch.
  wrong_epoch,   ///< A VERDICT frame for another core epoch.
  forged,        ///< A VERDICT record whose txn_id does not match the stored transaction.
  unexpected_type,  ///< A valid frame of a type not meant for this channel (the core receiving TXN).
  bad_score,     ///< A VERDICT record whose score is NaN, infinite or outside [0, 1] (or non-zero when unscored).
  bad_decision,  ///< A VERDICT record whose decision is not 0, 1 or 2.
  bad_reserved,  ///< A VERDICT record with unknown flag bits or non-zero reserved bytes.
};

/// Number of reject reasons (size of per-reason counter arrays).
inline constexpr std::size_t reject_reason_count = 13;

/// Every reason, in order, for iterating counter arrays.
inline constexpr std::array<reject_reason, reject_reason_count> all_reject_reasons = {
    reject_reason::truncated,   reject_reason::oversized, reject_reason::bad_magic,
    reject_reason::bad_version, reject_reason::bad_type,  reject_reason::bad_length,
    reject_reason::bad_checksum, reject_reason::wrong_epoch, reject_reason::forged,
    reject_reason::unexpected_type, reject_reason::bad_score, reject_reason::bad_decision,
    reject_reason::bad_reserved};

/// Name used in logs, the summary JSON and the `reason` metric label.
constexpr const char* to_string(reject_reason r) noexcept {
  switch (r) {
    case reject_reason::truncated: return "truncated";
    case reject_reason::oversized: return "oversized";
    case reject_reason::bad_magic: return "bad_magic";
    case reject_reason::bad_version: return "bad_version";
    case reject_reason::bad_type: return "bad_type";
    case reject_reason::bad_length: return "bad_length";
    case reject_reason::bad_checksum: return "bad_checksum";
    case reject_reason::wrong_epoch: return "wrong_epoch";
    case reject_reason::forged: return "forged";
    case reject_reason::unexpected_type: return "unexpected_type";
    case reject_reason::bad_score: return "bad_score";
    case reject_reason::bad_decision: return "bad_decision";
    case reject_reason::bad_reserved: return "bad_reserved";
  }
  return "?";
}

/// What the payment core offloads. The seq is not part of it: the ring
/// position gives it (seq = position + 1).
struct txn {
  std::uint64_t txn_id = 0;             ///< The payment system's transaction id.
  std::int64_t amount_minor = 0;        ///< Amount in minor units (cents).
  std::int64_t timestamp_ns = 0;        ///< When the payment was made (core's clock).
  std::uint64_t merchant_id = 0;        ///< Merchant id.
  std::uint64_t card_fp = 0;            ///< Card fingerprint (a hash, never a PAN).
  std::array<char, 3> currency{};       ///< ISO 4217 letters, e.g. {'E','U','R'}.
  std::uint8_t channel = 0;             ///< 0 card-present, 1 e-commerce, 2 recurring.
  std::uint32_t mcc = 0;                ///< Merchant category code.
};

/// A decoded TXN record.
struct txn_record {
  std::uint64_t seq = 0;   ///< Ring position + 1.
  txn t;                   ///< The transaction.
  ns_t offload_ns = 0;     ///< When the core admitted it to the ring.
};

/// A decoded VERDICT record.
struct verdict_record {
  std::uint64_t seq = 0;       ///< The TXN's seq.
  std::uint64_t txn_id = 0;    ///< The TXN's id, cross-checked by the core.
  float score = 0;             ///< Fraud probability in [0, 1]; 0 when unscored.
  std::uint8_t decision = 0;   ///< 0 approve, 1 review, 2 decline.
  std::uint8_t flags = 0;      ///< verdict_flag_unscored or 0.
  std::uint16_t reserved = 0;  ///< Zero on the wire.
};

/// Why the core must not apply a VERDICT record, or nullopt when it is well formed.
std::optional<reject_reason> check_verdict_record(const verdict_record& v) noexcept;

/// A HELLO's status record: what the bridge incarnation has read and answered.
struct hello_record {
  std::uint64_t read_serial = 0;         ///< Highest TXN frame serial of the echoed epoch read and answered (0 = none).
  std::uint32_t heartbeat_ms = 0;        ///< The bridge's heartbeat interval.
  std::uint32_t reserved = 0;            ///< Zero.
  std::uint64_t records_answered = 0;    ///< Verdict records queued by this incarnation.
  std::uint64_t duplicates_skipped = 0;  ///< TXN records skipped as already answered.
};

/// The fixed header of a frame.
struct frame_header {
  std::uint8_t version = protocol_version;  ///< Wire version.
  frame_type type = frame_type::txn;        ///< Frame type.
  std::uint16_t count = 0;                  ///< Records that follow.
  std::uint64_t epoch = 0;                  ///< Core epoch (see PROTOCOL.md per type).
  std::uint64_t incarnation = 0;            ///< Bridge incarnation (HELLO, VERDICT); the frame serial in TXN frames.
};

/// Result of `decode_frame`: a header plus a view of the records, or a reason.
struct decoded_frame {
  bool valid = false;                          ///< True when the frame passed every check.
  reject_reason reject = reject_reason::truncated;  ///< Why not, when !valid.
  frame_header header;                         ///< Meaningful when valid.
  std::span<const std::byte> records;          ///< The record bytes, when valid.

  /// True when the frame passed every check.
  bool ok() const noexcept { return valid; }
  /// Record i of a valid TXN frame.
  txn_record txn_at(std::size_t i) const noexcept;
  /// Record i of a valid VERDICT frame.
  verdict_record verdict_at(std::size_t i) const noexcept;
  /// The status record of a valid HELLO frame.
  hello_record hello() const noexcept;
};

/// XXH64 (seed 0) of bytes [0, 24) followed by [32, end): the checksum field
/// itself is skipped. `frame` must be at least header_bytes long.
std::uint64_t frame_checksum(std::span<const std::byte> frame) noexcept;

/// Validates and views a frame. Never throws, never reads outside `frame`,
/// checks in the order of docs/PROTOCOL.md.
decoded_frame decode_frame(std::span<const std::byte> frame) noexcept;

/// Builds frames into a reusable buffer. The buffer grows on demand (through
/// `reserve_records`), so a caller can catch `std::bad_alloc` there and retry
/// later without losing anything.
class frame_writer {
 public:
  /// Starts a frame; any previous frame in the buffer is discarded.
  void begin(frame_type type, std::uint64_t epoch, std::uint64_t incarnation);
  /// Makes room for `n` records of the current type; may throw std::bad_alloc.
  void reserve_records(std::size_t n);
  /// Appends a TXN record; room must have been reserved.
  void add_txn(std::uint64_t seq, const txn& t, ns_t offload_ns) noexcept;
  /// Appends a VERDICT record; room must have been reserved.
  void add_verdict(const verdict_record& v) noexcept;
  /// Appends a HELLO's status record; room must have been reserved.
  void add_hello(const hello_record& h) noexcept;
  /// Writes count and checksum and returns the finished frame.
  std::span<const std::byte> finish() noexcept;
  /// Records added since begin().
  std::size_t count() const noexcept { return count_; }
  /// Records the buffer has room for without growing.
  std::size_t capacity_records() const noexcept;

 private:
  std::vector<std::byte> buf_;
  std::size_t size_ = 0;
  std::size_t count_ = 0;
  frame_type type_ = frame_type::txn;
};

/// Encodes a whole frame in one call (tests, fixtures, cold paths).
std::vector<std::byte> encode_txn_frame(std::uint64_t epoch, std::span<const txn_record> records,
                                        std::uint64_t serial = 1);
/// Encodes a whole VERDICT frame in one call (tests, fake bridges).
std::vector<std::byte> encode_verdict_frame(std::uint64_t epoch, std::uint64_t incarnation,
                                            std::span<const verdict_record> records);
/// Encodes a HELLO frame.
std::vector<std::byte> encode_hello_frame(std::uint64_t last_epoch, std::uint64_t incarnation,
                                          const hello_record& status = hello_record{0, 200, 0, 0, 0});

}  // namespace aegis
