import { describe, expect, it } from "vitest";
import { ClixmlError, decodeFileBytes, listForm, parseClixml, plainTypeNames, stringForm, type PsObject } from "./clixml.js";
import { classifyExports, cmdletOfFileName } from "./exports.js";

const objs = (body: string) => `<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">${body}</Objs>`;
const obj = (v: unknown) => v as PsObject;

const OWA = `
  <Obj RefId="0">
    <TN RefId="0">
      <T>Deserialized.Microsoft.Exchange.Data.Directory.SystemConfiguration.ADOwaVirtualDirectory</T>
      <T>Deserialized.System.Object</T>
    </TN>
    <ToString>owa (Default Web Site)</ToString>
    <Props>
      <S N="Name">owa (Default Web Site)</S>
      <URI N="InternalUrl">https://cas01.contoso.com/owa</URI>
      <Nil N="ExternalUrl" />
      <Obj N="InternalAuthenticationMethods" RefId="1">
        <TN RefId="1"><T>Deserialized.Microsoft.Exchange.Data.MultiValuedProperty\`1[[Microsoft.Exchange.Data.Directory.AuthenticationMethod]]</T><T>Deserialized.System.Object</T></TN>
        <LST><S>Basic</S><S>Fba</S></LST>
      </Obj>
      <Obj N="ExternalAuthenticationMethods" RefId="2"><TNRef RefId="1" /><LST /></Obj>
      <Obj N="CrossSiteRedirectType" RefId="3">
        <TN RefId="2"><T>Deserialized.Microsoft.Exchange.Data.Directory.SystemConfiguration.CrossSiteRedirectTypeOptions</T><T>Deserialized.System.Enum</T></TN>
        <ToString>Silent</ToString>
        <I32>0</I32>
      </Obj>
      <B N="RedirectToOptimalOWAServer">true</B>
      <I32 N="Count">-7</I32>
      <I64 N="Big">9007199254740993</I64>
      <S N="Weird_x005F_x0041_Name">line one_x000D__x000A_line two &amp; &lt;more&gt;</S>
      <Version N="V">14.3.123.4</Version>
      <G N="Guid">37562291-2f1a-429d-87fe-054f5442ad1b</G>
      <DT N="WhenChanged">2011-03-14T09:26:53+00:00</DT>
      <Ref N="Again" RefId="1" />
    </Props>
    <MS><S N="PSComputerName">ex01.contoso.com</S></MS>
  </Obj>`;

describe("CLIXML reader (MS-PSRP 2.2.5)", () => {
  it("reads objects: type names, ToString, Props and MS, primitives, Nil", () => {
    const [o] = parseClixml(objs(OWA), "t.xml").map(obj);
    expect(o.typeNames[0]).toBe("Deserialized.Microsoft.Exchange.Data.Directory.SystemConfiguration.ADOwaVirtualDirectory");
    expect(plainTypeNames(o)[0]).toBe("Microsoft.Exchange.Data.Directory.SystemConfiguration.ADOwaVirtualDirectory");
    expect(o.str).toBe("owa (Default Web Site)");
    expect(o.props.get("Name")).toBe("owa (Default Web Site)");
    expect(o.props.get("InternalUrl")).toBe("https://cas01.contoso.com/owa");
    expect(o.props.get("ExternalUrl")).toBeNull();
    expect(o.props.get("RedirectToOptimalOWAServer")).toBe(true);
    expect(o.props.get("Count")).toBe(-7);
    expect(o.props.get("Big")).toBe(9007199254740993n);
    expect(o.props.get("V")).toBe("14.3.123.4");
    expect(o.props.get("Guid")).toBe("37562291-2f1a-429d-87fe-054f5442ad1b");
    expect(o.props.get("PSComputerName")).toBe("ex01.contoso.com");
  });

  it("decodes _xHHHH_ escapes in strings and property names, and XML entities", () => {
    const [o] = parseClixml(objs(OWA), "t.xml").map(obj);
    expect(o.props.get("Weird_x0041_Name")).toBe("line one\r\nline two & <more>");
  });

  it("reads enums as their name and integer, and lists (LST), empty ones too", () => {
    const [o] = parseClixml(objs(OWA), "t.xml").map(obj);
    const e = obj(o.props.get("CrossSiteRedirectType"));
    expect(stringForm(e)).toBe("Silent");
    expect(e.value).toBe(0);
    expect(plainTypeNames(e)).toContain("System.Enum");
    expect(listForm(o.props.get("InternalAuthenticationMethods"))).toEqual(["Basic", "Fba"]);
    expect(listForm(o.props.get("ExternalAuthenticationMethods"))).toEqual([]);
    expect(listForm(null)).toEqual([]);
    expect(listForm("one")).toEqual(["one"]);
  });

  it("resolves TNRef to the type names of an earlier TN, and Ref to the same object", () => {
    const [o] = parseClixml(objs(OWA), "t.xml").map(obj);
    expect(obj(o.props.get("ExternalAuthenticationMethods")).typeNames).toEqual(obj(o.props.get("InternalAuthenticationMethods")).typeNames);
    expect(o.props.get("Again")).toBe(o.props.get("InternalAuthenticationMethods"));
  });

  it("reads dictionaries and top-level primitives", () => {
    const v = parseClixml(
      objs(`<Obj RefId="0"><TN RefId="0"><T>System.Collections.Hashtable</T></TN><DCT><En><S N="Key">a</S><I32 N="Value">1</I32></En></DCT></Obj><S>plain</S><Nil />`),
      "t.xml",
    );
    expect(obj(v[0]).dict?.get("a")).toBe(1);
    expect(v.slice(1)).toEqual(["plain", null]);
  });

  it("reads UTF-16 LE with a BOM (Export-Clixml's default encoding) and UTF-8 with a BOM", () => {
    const text = objs(OWA);
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, "utf16le")]);
    expect(decodeFileBytes(utf16)).toBe(text);
    expect(decodeFileBytes(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]))).toBe(text);
    expect(decodeFileBytes(Buffer.from(text, "utf16le"))).toBe(text);
  });

  it("says where a file is not well-formed, not CLIXML, or refers to what is not there", () => {
    const fails = (text: string) => {
      try {
        parseClixml(text, "bad.xml");
      } catch (err) {
        expect(err).toBeInstanceOf(ClixmlError);
        return (err as Error).message;
      }
      throw new Error("parsed");
    };
    expect(fails(objs("<Obj><Props><S N='x'>a</Props></Obj>"))).toMatch(/^bad\.xml: line 1, column \d+: not well-formed XML/);
    expect(fails("<html><body/></html>")).toBe("bad.xml: not a CLIXML file: the root element is <html>, Export-Clixml writes <Objs>");
    expect(fails(objs(`<Obj RefId="0"><TNRef RefId="5" /></Obj>`))).toBe('bad.xml: object 1: <TNRef RefId="5"> refers to no earlier <TN>');
    expect(fails(objs(`<Obj RefId="0"><Props><Ref N="x" RefId="9" /></Props></Obj>`))).toBe('bad.xml: object 1, property x: <Ref RefId="9"> refers to no earlier <Obj>');
    expect(fails(objs(`<Obj RefId="0"><Props><I32 N="n">ten</I32></Props></Obj>`))).toBe('bad.xml: object 1, property n: <I32> holds "ten", not a number');
    expect(fails(objs(`<Obj RefId="0"><Props><Blob N="n">x</Blob></Props></Obj>`))).toBe("bad.xml: object 1, property n: unknown CLIXML element <Blob>");
  });
});

describe("recognising exports", () => {
  const bytes = (s: string) => new Uint8Array(Buffer.from(s));
  it("by file name, any case, .xml or .clixml", () => {
    expect(cmdletOfFileName("Get-OwaVirtualDirectory.xml")).toBe("Get-OwaVirtualDirectory");
    expect(cmdletOfFileName("get-popsettings.CLIXML")).toBe("Get-PopSettings");
    expect(cmdletOfFileName("owa.xml")).toBeUndefined();
  });

  it("by type names when the file is named otherwise (Deserialized. and Selected. prefixes)", () => {
    const selected = OWA.replace(/Deserialized\.Microsoft/, "Selected.Microsoft");
    const set = classifyExports(new Map([["owa-dirs.xml", bytes(objs(OWA))], ["more.xml", bytes(objs(selected))]]));
    expect(set.errors).toEqual([]);
    expect(set.objects.map((o) => [o.file, o.cmdlet])).toEqual([
      ["more.xml", "Get-OwaVirtualDirectory"],
      ["owa-dirs.xml", "Get-OwaVirtualDirectory"],
    ]);
  });

  it("refuses an object whose type contradicts the file name, and ignores files it cannot place", () => {
    const set = classifyExports(new Map([["Get-EcpVirtualDirectory.xml", bytes(objs(OWA))], ["notes.xml", bytes(objs("<S>hello</S>"))]]));
    expect(set.errors).toEqual([
      { file: "Get-EcpVirtualDirectory.xml", object: "owa (Default Web Site) (object 1)", message: "is a ADOwaVirtualDirectory (Get-OwaVirtualDirectory output), but the file is named for Get-EcpVirtualDirectory" },
    ]);
    const plain = classifyExports(new Map([["notes.xml", bytes(objs(`<Obj RefId="0"><TN RefId="0"><T>System.IO.FileInfo</T></TN></Obj>`))]]));
    expect(plain.errors).toEqual([]);
    expect(plain.warnings[0].message).toMatch(/^ignored: not named for a cmdlet/);
  });

  it("refuses a named file holding values that are not objects", () => {
    const set = classifyExports(new Map([["Get-ExchangeServer.xml", bytes(objs("<S>EX01</S>"))]]));
    expect(set.errors).toEqual([{ file: "Get-ExchangeServer.xml", object: "object 1", message: "is a string value, not an Exchange object" }]);
  });
});
