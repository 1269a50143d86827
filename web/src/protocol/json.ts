/**
 * A checking JSON parser (RFC 8259) for untrusted input. `JSON.parse` silently keeps the last
 * of duplicate members, loses precision above 2^53 and accepts lone surrogate escapes; the
 * protocol refuses duplicates at any depth (§4.1, §10, §19.4) and carries u64 integers, so
 * every message is parsed here instead. Numbers keep their source text ({@link JsonNumber}),
 * objects keep member order ({@link JsonObject}), nesting depth is bounded.
 */

/** A JSON number, kept as its source text so that u64 values stay exact. */
export class JsonNumber {
  constructor(
    /** The number exactly as written. */
    readonly raw: string,
  ) {}
}

/** A JSON object: members in source order, each name once. */
export type JsonObject = Map<string, JsonValue>;

/** Any JSON value. */
export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject;

/** Why a text is not acceptable JSON. */
export class JsonSyntaxError extends Error {
  constructor(
    message: string,
    /** Offset (in UTF-16 units) where the problem was found. */
    readonly offset: number,
  ) {
    super(`${message} at offset ${offset}`);
    this.name = "JsonSyntaxError";
  }
}

/** Deepest nesting accepted; protocol messages need 4. */
export const MAX_JSON_DEPTH = 32;

/**
 * Parses one JSON text. Refuses duplicate member names at any depth, lone surrogates
 * (escaped or raw), unescaped control characters, trailing data, and nesting deeper than
 * `maxDepth`. Throws {@link JsonSyntaxError}.
 */
export function parseJson(text: string, maxDepth = MAX_JSON_DEPTH): JsonValue {
  const p = new Parser(text, maxDepth);
  p.ws();
  const v = p.value(0);
  p.ws();
  if (p.i !== text.length) p.error("trailing data after the JSON value");
  return v;
}

/** `true` when `v` is a JSON object. */
export function isObject(v: JsonValue | undefined): v is JsonObject {
  return v instanceof Map;
}

class Parser {
  i = 0;
  constructor(
    readonly s: string,
    readonly maxDepth: number,
  ) {}

  error(message: string): never {
    throw new JsonSyntaxError(message, this.i);
  }

  ws(): void {
    for (;;) {
      const c = this.s.charCodeAt(this.i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.i++;
      else return;
    }
  }

  value(depth: number): JsonValue {
    const c = this.s[this.i];
    if (c === "{") return this.object(depth + 1);
    if (c === "[") return this.array(depth + 1);
    if (c === '"') return this.string();
    if (c === "-" || (c >= "0" && c <= "9")) return this.number();
    for (const [word, v] of [
      ["true", true],
      ["false", false],
      ["null", null],
    ] as const) {
      if (this.s.startsWith(word, this.i)) {
        this.i += word.length;
        return v;
      }
    }
    return this.error(c === undefined ? "unexpected end of input" : "unexpected character");
  }

  object(depth: number): JsonObject {
    if (depth > this.maxDepth) this.error("nesting too deep");
    this.i++;
    const out: JsonObject = new Map();
    this.ws();
    if (this.s[this.i] === "}") {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.s[this.i] !== '"') this.error("expected a member name");
      const at = this.i;
      const name = this.string();
      if (out.has(name)) throw new JsonSyntaxError(`duplicate member ${JSON.stringify(name)}`, at);
      this.ws();
      if (this.s[this.i] !== ":") this.error("expected ':'");
      this.i++;
      this.ws();
      out.set(name, this.value(depth));
      this.ws();
      const c = this.s[this.i++];
      if (c === "}") return out;
      if (c !== ",") this.error("expected ',' or '}'");
    }
  }

  array(depth: number): JsonValue[] {
    if (depth > this.maxDepth) this.error("nesting too deep");
    this.i++;
    const out: JsonValue[] = [];
    this.ws();
    if (this.s[this.i] === "]") {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      out.push(this.value(depth));
      this.ws();
      const c = this.s[this.i++];
      if (c === "]") return out;
      if (c !== ",") this.error("expected ',' or ']'");
    }
  }

  number(): JsonNumber {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(this.s.slice(this.i, this.i + 400));
    if (!m || m[0].length === 0 || m[0] === "-") this.error("bad number");
    if (m[0].length >= 400) this.error("number too long");
    this.i += m[0].length;
    return new JsonNumber(m[0]);
  }

  string(): string {
    this.i++; // opening quote
    let out = "";
    let start = this.i;
    for (;;) {
      if (this.i >= this.s.length) this.error("unterminated string");
      const c = this.s.charCodeAt(this.i);
      if (c === 0x22) {
        out += this.s.slice(start, this.i);
        this.i++;
        return out;
      }
      if (c < 0x20) this.error("unescaped control character in a string");
      if (c >= 0xd800 && c <= 0xdfff) {
        const next = this.s.charCodeAt(this.i + 1);
        if (c >= 0xdc00 || !(next >= 0xdc00 && next <= 0xdfff)) this.error("lone surrogate in a string");
        this.i += 2;
        continue;
      }
      if (c !== 0x5c) {
        this.i++;
        continue;
      }
      out += this.s.slice(start, this.i);
      const e = this.s[this.i + 1];
      this.i += 2;
      const simple: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
      if (e !== undefined && e in simple) out += simple[e];
      else if (e === "u") {
        const u = this.hex4();
        if (u >= 0xd800 && u <= 0xdbff) {
          if (this.s[this.i] !== "\\" || this.s[this.i + 1] !== "u") this.error("lone surrogate escape");
          this.i += 2;
          const lo = this.hex4();
          if (lo < 0xdc00 || lo > 0xdfff) this.error("lone surrogate escape");
          out += String.fromCharCode(u, lo);
        } else if (u >= 0xdc00 && u <= 0xdfff) this.error("lone surrogate escape");
        else out += String.fromCharCode(u);
      } else this.error("bad escape");
      start = this.i;
    }
  }

  hex4(): number {
    const h = this.s.slice(this.i, this.i + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) this.error("bad \\u escape");
    this.i += 4;
    return parseInt(h, 16);
  }
}

const U64_MAX = (1n << 64n) - 1n;

/** The value of a JSON integer in `0 … 2^64−1` written without sign, fraction or exponent. */
export function jsonU64(v: JsonValue | undefined): bigint | null {
  if (!(v instanceof JsonNumber) || !/^(0|[1-9][0-9]*)$/.test(v.raw)) return null;
  const n = BigInt(v.raw);
  return n <= U64_MAX ? n : null;
}

/**
 * Checks that `obj` has every member of `required`, possibly some of `optional`, and no
 * other; returns the name of the first offending member or `null`.
 */
export function membersProblem(obj: JsonObject, required: readonly string[], optional: readonly string[] = []): string | null {
  for (const r of required) if (!obj.has(r)) return `missing member ${r}`;
  for (const k of obj.keys()) if (!required.includes(k) && !optional.includes(k)) return `unknown member ${JSON.stringify(k)}`;
  return null;
}

/** Compact JSON string literal as the canonical encodings write it (§4.1, §19.2). */
export function jsonString(s: string): string {
  return JSON.stringify(s);
}
