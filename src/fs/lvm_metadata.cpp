// SPDX-License-Identifier: Apache-2.0
// The parser works in two steps: text -> a small tree of sections and values (bounded), then the tree ->
// VgInfo, where every field we rely on must be present, of its type and in range.
#include "fs/lvm_metadata.h"

#include <algorithm>
#include <cctype>
#include <memory>

#include <fmt/format.h>

namespace vhdkit::fs::detail::lvm {
namespace {

// LVM2 writes a handful of levels (vg / logical_volumes / lv / segment); these bounds leave room and stop
// a hostile text from exhausting the stack or memory.
constexpr int kMaxDepth = 8;
constexpr size_t kMaxNodes = 1u << 20;
constexpr size_t kMaxArray = 1u << 16;
constexpr size_t kMaxPvs = 4096, kMaxLvs = 16384, kMaxSegments = 1u << 16;

struct Value {
  // An integer, a string, or an array of integers and strings.
  std::variant<int64_t, std::string> scalar;
  bool is_array = false;
  std::vector<std::variant<int64_t, std::string>> items;
};
struct Node {
  std::string name;
  std::optional<Value> value;                   // `name = value`
  std::vector<std::unique_ptr<Node>> children;  // `name { ... }`
  bool is_section() const { return !value; }
  const Node* child(std::string_view n) const {
    for (const auto& c : children)
      if (c->name == n) return c.get();
    return nullptr;
  }
};

class Parser {
 public:
  explicit Parser(std::string_view t) : t_(t) {}

  bool parse_items(Node& into, int depth, bool top) {
    if (depth > kMaxDepth) return fail("sections nest too deep");
    for (;;) {
      skip();
      if (p_ >= t_.size()) return top ? true : fail("a section is not closed");
      if (t_[p_] == '}') {
        if (top) return fail("an unmatched '}'");
        ++p_;
        return true;
      }
      std::string name;
      if (!ident(name)) return fail(fmt::format("unexpected character at byte {}", p_));
      if (++nodes_ > kMaxNodes) return fail("too many entries");
      auto n = std::make_unique<Node>();
      n->name = std::move(name);
      skip();
      if (p_ < t_.size() && t_[p_] == '{') {
        ++p_;
        if (!parse_items(*n, depth + 1, false)) return false;
      } else if (p_ < t_.size() && t_[p_] == '=') {
        ++p_;
        Value v;
        if (!value(v)) return false;
        n->value = std::move(v);
      } else {
        return fail(fmt::format("expected '=' or '{{' after '{}'", n->name));
      }
      into.children.push_back(std::move(n));
    }
  }
  const std::string& error() const { return error_; }

 private:
  bool fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    return false;
  }
  void skip() {
    while (p_ < t_.size()) {
      char c = t_[p_];
      if (c == '#') {
        while (p_ < t_.size() && t_[p_] != '\n') ++p_;
      } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++p_;
      } else {
        break;
      }
    }
  }
  static bool ident_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '+' || c == '-';
  }
  bool ident(std::string& out) {
    size_t b = p_;
    while (p_ < t_.size() && ident_char(t_[p_])) ++p_;
    out.assign(t_.substr(b, p_ - b));
    return !out.empty();
  }
  bool scalar(std::variant<int64_t, std::string>& out) {
    skip();
    if (p_ >= t_.size()) return fail("a value is missing");
    if (t_[p_] == '"') {
      std::string s;
      for (++p_;; ++p_) {
        if (p_ >= t_.size()) return fail("a string is not closed");
        char c = t_[p_];
        if (c == '"') break;
        if (c == '\\') {
          if (++p_ >= t_.size()) return fail("a string is not closed");
          c = t_[p_];
        }
        s.push_back(c);
      }
      ++p_;
      out = std::move(s);
      return true;
    }
    bool neg = false;
    if (t_[p_] == '-') {
      neg = true;
      ++p_;
    }
    if (p_ >= t_.size() || !std::isdigit(static_cast<unsigned char>(t_[p_])))
      return fail("a value is not a number or string");
    uint64_t v = 0;
    while (p_ < t_.size() && std::isdigit(static_cast<unsigned char>(t_[p_]))) {
      const uint64_t digit = static_cast<uint64_t>(t_[p_] - '0');
      if (v > (uint64_t{INT64_MAX} - digit) / 10) return fail("a number overflows");
      v = v * 10 + digit;
      ++p_;
    }
    // Floats (LVM writes none in VG metadata) are not understood.
    if (p_ < t_.size() && t_[p_] == '.') return fail("a number has a fraction");
    out = neg ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
    return true;
  }
  bool value(Value& v) {
    skip();
    if (p_ < t_.size() && t_[p_] == '[') {
      ++p_;
      v.is_array = true;
      skip();
      if (p_ < t_.size() && t_[p_] == ']') {
        ++p_;
        return true;
      }
      for (;;) {
        if (v.items.size() >= kMaxArray) return fail("an array is too long");
        std::variant<int64_t, std::string> item;
        if (!scalar(item)) return false;
        v.items.push_back(std::move(item));
        skip();
        if (p_ < t_.size() && t_[p_] == ',') {
          ++p_;
          continue;
        }
        if (p_ < t_.size() && t_[p_] == ']') {
          ++p_;
          return true;
        }
        return fail("an array is not closed");
      }
    }
    return scalar(v.scalar);
  }

  std::string_view t_;
  size_t p_ = 0;
  size_t nodes_ = 0;
  std::string error_;
};

std::optional<uint64_t> get_uint(const Node& s, std::string_view key) {
  const Node* n = s.child(key);
  if (!n || !n->value || n->value->is_array) return std::nullopt;
  const int64_t* v = std::get_if<int64_t>(&n->value->scalar);
  if (!v || *v < 0) return std::nullopt;
  return static_cast<uint64_t>(*v);
}
std::optional<std::string> get_string(const Node& s, std::string_view key) {
  const Node* n = s.child(key);
  if (!n || !n->value || n->value->is_array) return std::nullopt;
  const std::string* v = std::get_if<std::string>(&n->value->scalar);
  if (!v) return std::nullopt;
  return *v;
}

std::string strip_dashes(std::string s) {
  std::erase(s, '-');
  return s;
}

Parsed bad(std::string why) { return Parsed{std::nullopt, std::move(why)}; }

std::optional<std::string> read_segment(const Node& n, Segment& seg) {
  auto start = get_uint(n, "start_extent"), count = get_uint(n, "extent_count");
  auto type = get_string(n, "type");
  if (!start || !count || !type || *count == 0) return "a segment lacks its extents or type";
  seg.start_extent = *start;
  seg.extent_count = *count;
  seg.type = *type;
  if (seg.type != "striped") return std::nullopt;  // the caller keeps what it does not map
  auto stripes_count = get_uint(n, "stripe_count");
  const Node* stripes = n.child("stripes");
  if (!stripes_count || !stripes || !stripes->value || !stripes->value->is_array)
    return "a striped segment lacks its stripes";
  seg.stripe_count = *stripes_count;
  const auto& items = stripes->value->items;
  if (items.size() != 2 * seg.stripe_count) return "a striped segment's stripes disagree with its stripe count";
  if (seg.stripe_count == 1) {
    const std::string* pv = std::get_if<std::string>(&items[0]);
    const int64_t* pe = std::get_if<int64_t>(&items[1]);
    if (!pv || !pe || *pe < 0) return "a stripe is not a PV and an extent";
    seg.pv = *pv;
    seg.pv_extent = static_cast<uint64_t>(*pe);
  }
  return std::nullopt;
}

}  // namespace

Parsed parse_metadata(std::string_view text) {
  Node root;
  Parser p(text);
  if (!p.parse_items(root, 0, true)) return bad("the metadata text is malformed: " + p.error());
  if (get_string(root, "contents") != "Text Format Volume Group" || get_uint(root, "version") != 1u)
    return bad("the metadata text is not LVM2 text format version 1");
  const Node* vgn = nullptr;
  for (const auto& c : root.children) {
    if (!c->is_section()) continue;
    if (vgn) return bad("the metadata text holds more than one volume group");
    vgn = c.get();
  }
  if (!vgn) return bad("the metadata text holds no volume group");
  VgInfo vg;
  vg.name = vgn->name;
  auto seqno = get_uint(*vgn, "seqno"), extent = get_uint(*vgn, "extent_size");
  if (!seqno || !extent || *extent == 0 || *extent > (uint64_t{1} << 32))
    return bad("the volume group lacks its sequence number or extent size");
  if (get_string(*vgn, "format").value_or("lvm2") != "lvm2") return bad("the volume group is not in lvm2 format");
  vg.seqno = *seqno;
  vg.extent_size = *extent;
  const Node* pvs = vgn->child("physical_volumes");
  if (!pvs || !pvs->is_section()) return bad("the volume group lists no physical volumes");
  for (const auto& c : pvs->children) {
    if (!c->is_section() || vg.pvs.size() >= kMaxPvs) return bad("the physical volume list is malformed");
    PvInfo pv;
    pv.name = c->name;
    auto id = get_string(*c, "id");
    auto pe_start = get_uint(*c, "pe_start"), pe_count = get_uint(*c, "pe_count");
    if (!id || !pe_start || !pe_count) return bad(fmt::format("physical volume {} lacks its id or extents", c->name));
    pv.id = strip_dashes(*id);
    pv.pe_start = *pe_start;
    pv.pe_count = *pe_count;
    vg.pvs.push_back(std::move(pv));
  }
  size_t segments = 0;
  if (const Node* lvs = vgn->child("logical_volumes")) {
    if (!lvs->is_section()) return bad("the logical volume list is malformed");
    for (const auto& c : lvs->children) {
      if (!c->is_section() || vg.lvs.size() >= kMaxLvs) return bad("the logical volume list is malformed");
      LvInfo lv;
      lv.name = c->name;
      auto count = get_uint(*c, "segment_count");
      if (!count || *count == 0) return bad(fmt::format("logical volume {} lacks its segment count", c->name));
      for (uint64_t i = 1; i <= *count; ++i) {
        const Node* sn = c->child(fmt::format("segment{}", i));
        if (!sn || !sn->is_section() || ++segments > kMaxSegments)
          return bad(fmt::format("logical volume {} lacks segment {}", c->name, i));
        Segment seg;
        if (auto why = read_segment(*sn, seg)) return bad(fmt::format("logical volume {}: {}", c->name, *why));
        lv.segments.push_back(std::move(seg));
      }
      vg.lvs.push_back(std::move(lv));
    }
  }
  return Parsed{std::move(vg), ""};
}

}  // namespace vhdkit::fs::detail::lvm
