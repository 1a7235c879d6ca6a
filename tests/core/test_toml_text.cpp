// check_toml_text (core/toml_text.h): non-ASCII text outside strings and comments is refused
// with line and column (counted by hand below), text inside any of TOML's four string forms and
// comments is accepted.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "core/toml_text.h"

using semskip::check_toml_text;

namespace {

std::string error_of(const std::string& text) {
  try {
    check_toml_text(text, "run.toml");
  } catch (const semskip::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// 中 (U+4E2D) and ✓ (U+2713) are outside the ranges the parser cannot classify; é (U+00E9) is in one.
TEST(TomlText, AcceptsNonAsciiInStringsAndComments) {
  EXPECT_EQ(error_of("workload = \"text:中.txt\" # ✓\n"), "");
  EXPECT_EQ(error_of("a = '中'\nb = \"\"\"x\n中\"\"\"\nc = '''\n✓'''\n"), "");
  EXPECT_EQ(error_of("a = \"q\\\"中\"\n"), "");              // an escaped quote does not end the string
  EXPECT_EQ(error_of("a = \"\"\"x\"\"\"\"\"\nb = 1\n"), "");  // """x""""" is x"" then code
  EXPECT_EQ(error_of("\"cl中\" = 1\n"), "");                 // a quoted key
  EXPECT_EQ(error_of("a = [1,\"中\",\n  '✓']\nb = {c = \"中\"}\n[t.\"✓\"]\n"), "");
  EXPECT_EQ(error_of("a = \"donn\\u00e9es\"\n"), "");        // é written as an escape
  EXPECT_EQ(error_of(""), "");
}

// The fuzzer's finding in a malformed date (`1979-05-2["n7T` + U+0432): the tokenizer reads on
// through what looks like a string, so such characters are refused wherever they are.
TEST(TomlText, RefusesCharactersTheParserCannotClassifyAnywhere) {
  EXPECT_EQ(error_of("workload = \"text:données.txt\"\n").substr(0, 33), "run.toml:1:22: character U+00E9: ");
  EXPECT_EQ(error_of("a = 1 # \xEF\xBB\xBB\n").substr(0, 29), "run.toml:1:9: character U+FEF");
  EXPECT_EQ(error_of("sed = 1979-05-2[\"n7T\xD0\xB2" "07:32: b = \"\"\"\n").substr(0, 33),
            "run.toml:1:21: character U+0432: ");
  EXPECT_EQ(error_of("a = \"\xE3\x80\x80\"\n"), "");  // U+3000, a space the parser names
}

TEST(TomlText, RefusesNonAsciiOutsideStringsWithLineAndColumn) {
  EXPECT_EQ(error_of("# ok\nworkload = text:données.txt\n"),
            "run.toml:2:21: character U+00E9 outside a quoted string or a comment (TOML keys and bare values are "
            "ASCII; quote the value: key = \"...\")");
  EXPECT_EQ(error_of("é = 1").substr(0, 36), "run.toml:1:1: character U+00E9 outsi");
  EXPECT_EQ(error_of("a = \"x\" ¡").substr(0, 37), "run.toml:1:9: character U+00A1 outsid");
  EXPECT_EQ(error_of("a = 1\nb = [1, \xD0\x96]").substr(0, 37), "run.toml:2:9: character U+0416 outsid");
  EXPECT_EQ(error_of("a = \xff"), "run.toml:1:5: byte 0xFF is not UTF-8 (TOML files are UTF-8 text)");
  // A quote glued to a bare value opens no string (toml++ reads it as part of the value).
  EXPECT_EQ(error_of("a =0\"x\xCF\xA1y\"").substr(0, 37), "run.toml:1:7: character U+03E1 outsid");
  // A basic string ends at its line's end: what follows on the next line is code again.
  EXPECT_EQ(error_of("a = \"open\né = 1").substr(0, 36), "run.toml:2:1: character U+00E9 outsi");
}

// What toml++ 3.3 classifies as possible whitespace inside basic strings: the character after a
// backslash, and the first one past the whitespace a line-ending backslash trims (the fuzzer's
// finding: `"""12\` + newline + U+FEFB reached its unreachable point). Columns by hand.
TEST(TomlText, RefusesNonAsciiWhereABackslashMakesTheParserClassifyIt) {
  EXPECT_EQ(error_of("a = \"\"\"12\\\n\xE4\xB8\xAD!\"\"\""),
            "run.toml:1:10: a line-ending backslash followed by a non-ASCII character in a multi-line string (not "
            "read reliably by the TOML parser; start the continued line with an ASCII character or drop the "
            "backslash)");
  EXPECT_EQ(error_of("a = \"\"\"x\\  \r\n\n   \xE2\x9C\x93\"\"\"").substr(0, 50),
            "run.toml:1:9: a line-ending backslash followed by ");
  EXPECT_EQ(error_of("a = \"x\\\xE2\x9C\x93\"").substr(0, 55), "run.toml:1:7: a backslash before a non-ASCII character ");
  EXPECT_EQ(error_of("a = \"\"\"x\\\xE4\xB8\xAD\"\"\"").substr(0, 45), "run.toml:1:9: a backslash before a non-ASCII ");
  EXPECT_EQ(error_of("a = \"\"\"\"12\\  \xE4\xB8\xAD  > \"2\"").substr(0, 66),
            "run.toml:1:11: a backslash followed by whitespace and a non-ASCII ");
  EXPECT_EQ(error_of("a = \"\"\"2\n.\\ \xE4\xB8\xAD!").substr(0, 65),
            "run.toml:2:2: a backslash followed by whitespace and a non-ASCII ");
  EXPECT_EQ(error_of("a = \"x\\ \xE2\x9C\x93\"").substr(0, 64), "run.toml:1:7: a backslash followed by whitespace and a non-ASCII");
  // Accepted: ASCII after the trimmed whitespace, non-ASCII later on the line, escapes of ASCII.
  EXPECT_EQ(error_of("a = \"\"\"12\\\n  x\xE4\xB8\xAD\"\"\"\n"), "");
  EXPECT_EQ(error_of("a = \"\\u00e9 \\t \xE2\x9C\x93\"\n"), "");
  EXPECT_EQ(error_of("a = '''x\\\n\xE2\x9C\x93'''\n"), "");  // literal strings have no escapes
}
