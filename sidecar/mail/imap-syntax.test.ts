import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { LineConnection } from "./connection.js";
import { imapString, readImapCommand } from "./imap-syntax.js";

function conn(input: string | Buffer) {
  const s = new PassThrough();
  const c = new LineConnection(s, { maxLineLength: 1024, idleMs: 0, deadline: 0 });
  s.write(input);
  return { c, s };
}

async function parse(input: string | Buffer, maxLiteralLength = 100) {
  const { c } = conn(input);
  let continued = 0;
  const cmd = await readImapCommand(c, { maxLiteralLength, continueLiteral: () => continued++ });
  return { cmd, continued };
}

describe("readImapCommand", () => {
  it("atoms, quoted strings with escapes, and lists", async () => {
    const { cmd } = await parse('a1 LOGIN alice "p \\"w\\\\ d"\r\n');
    expect(cmd).toEqual({
      ok: true,
      tag: "a1",
      name: "LOGIN",
      args: [
        { kind: "atom", value: "alice" },
        { kind: "string", value: 'p "w\\ d' },
      ],
    });
    const id = await parse('b ID ("name" "x" "version" "1.0")\r\n');
    expect(id.cmd.ok && id.cmd.args[0]).toEqual({
      kind: "list",
      items: ["name", "x", "version", "1.0"].map((value) => ({ kind: "string", value })),
    });
  });

  it("synchronizing literals ask for continuation; LITERAL+ ones do not", async () => {
    const sync = await parse("c LOGIN {5}\r\nalice {4}\r\npw\u00fc\r\n");
    expect(sync.continued).toBe(2);
    expect(sync.cmd.ok && sync.cmd.args).toEqual([
      { kind: "string", value: "alice" },
      { kind: "string", value: "pwü" },
    ]);
    const plus = await parse("d LOGIN {5+}\r\nalice {2+}\r\npw\r\n");
    expect(plus.continued).toBe(0);
    expect(plus.cmd.ok && plus.cmd.args.length).toBe(2);
  });

  it("literals over the limit: refused before continuation, fatal when non-synchronizing", async () => {
    expect((await parse("e LOGIN {101}\r\n")).cmd).toMatchObject({ ok: false, tag: "e", code: "TOOBIG" });
    expect((await parse("e LOGIN {101}\r\n")).continued).toBe(0);
    expect((await parse("f LOGIN {101+}\r\n")).cmd).toMatchObject({ ok: false, fatal: true });
  });

  it("syntax errors name the tag when there is one", async () => {
    expect((await parse("\r\n")).cmd).toMatchObject({ ok: false, text: "Empty command line." });
    expect((await parse("+tag NOOP\r\n")).cmd).toMatchObject({ ok: false, text: "Invalid tag." });
    expect((await parse('g LOGIN "unterminated\r\n')).cmd).toMatchObject({ ok: false, tag: "g" });
    expect((await parse("h LOGIN (a\r\n")).cmd).toMatchObject({ ok: false, tag: "h", text: "Unbalanced parenthesis." });
    expect((await parse(Buffer.from("i LOGIN a\u0000b\r\n"))).cmd).toMatchObject({ ok: false, tag: "i" });
  });

  it("imapString quotes what is safe and uses a literal otherwise", () => {
    expect(imapString('a "b"', false)).toEqual({ text: '"a \\"b\\""' });
    expect(imapString("pässwörd", true).text).toBe("{10+}");
    expect(imapString("x\ny", false)).toEqual({ text: "{3}", literal: Buffer.from("x\ny") });
  });
});
