import { describe, expect, it } from "vitest";
import { isObject, JsonNumber, jsonU64, JsonSyntaxError, parseJson, type JsonValue } from "../src/protocol/json.ts";

/** Deterministic generator (mulberry32) for the property tests: seeded, never Math.random. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomValue(r: () => number, depth: number): unknown {
  const pick = Math.floor(r() * (depth > 3 ? 4 : 6));
  switch (pick) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2:
      return Math.floor(r() * 1e9);
    case 3:
      return Array.from({ length: Math.floor(r() * 6) }, () => String.fromCodePoint(Math.floor(r() * 0x2ffff) % 0xd800 || 0x41)).join("");
    case 4:
      return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = 0; i < Math.floor(r() * 4); i++) o[`k${Math.floor(r() * 8)}`] = randomValue(r, depth + 1);
      return o;
    }
  }
}

function toPlain(v: JsonValue): unknown {
  if (v instanceof JsonNumber) return Number(v.raw);
  if (Array.isArray(v)) return v.map(toPlain);
  if (isObject(v)) return Object.fromEntries([...v].map(([k, x]) => [k, toPlain(x)]));
  return v;
}

describe("checking JSON parser", () => {
  it("agrees with JSON.parse on generated documents without duplicates (seeded)", () => {
    const r = rng(20261126);
    for (let i = 0; i < 500; i++) {
      const text = JSON.stringify(randomValue(r, 0), null, r() < 0.5 ? 1 : undefined);
      expect(toPlain(parseJson(text))).toEqual(JSON.parse(text));
    }
  });

  it("never throws anything but JsonSyntaxError on mutated input (seeded)", () => {
    const r = rng(7);
    for (let i = 0; i < 2000; i++) {
      const chars = [...JSON.stringify(randomValue(r, 0))];
      for (let m = 0; m < 3; m++) chars[Math.floor(r() * chars.length)] = '{}[]",:\\u0a-.e'[Math.floor(r() * 15)];
      try {
        parseJson(chars.join(""));
      } catch (e) {
        expect(e).toBeInstanceOf(JsonSyntaxError);
      }
    }
  });

  it("refuses duplicates at any depth, which JSON.parse silently takes", () => {
    expect(JSON.parse('{"a":1,"a":2}')).toEqual({ a: 2 });
    expect(() => parseJson('{"a":1,"a":2}')).toThrow(JsonSyntaxError);
    expect(() => parseJson('[{"x":{"a":1,"\\u0061":2}}]')).toThrow(/duplicate/);
    expect(() => parseJson('{"a":{"b":1},"c":{"b":1}}')).not.toThrow();
  });

  it("refuses lone surrogates, raw controls, trailing data, bad numbers and deep nesting", () => {
    for (const bad of ['"\\ud800"', '"\\udc00"', '"\\ud800\\u0041"', '"\u0001"', "1 2", "01", "1.", "-", "+1", ".5", "[1,]", "{,}", "nul", '"\\x"', "\ufeff{}"]) {
      expect(() => parseJson(bad), bad).toThrow(JsonSyntaxError);
    }
    expect(parseJson('"\\ud83d\\ude00"')).toBe("😀");
    expect(() => parseJson("[".repeat(33) + "]".repeat(33))).toThrow(/too deep/);
    expect(() => parseJson("[".repeat(32) + "]".repeat(32))).not.toThrow();
    expect(() => parseJson("[".repeat(100_000))).toThrow(JsonSyntaxError);
  });

  it("keeps u64 integers exact and refuses signs, fractions and exponents as u64", () => {
    expect(jsonU64(parseJson("18446744073709551615"))).toBe(18446744073709551615n);
    expect(jsonU64(parseJson("18446744073709551616"))).toBeNull();
    for (const t of ["-1", "1.0", "1e3", "-0"]) expect(jsonU64(parseJson(t))).toBeNull();
  });
});
