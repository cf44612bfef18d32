/**
 * The D-Bus wire format, as much of it as talking to systemd's manager needs: messages marshalled
 * and unmarshalled by signature (little-endian, protocol version 1). Pure: the connection is
 * `_dbus.ts`.
 *
 * Every byte read is hostile until parsed: lengths are bounded by the message, signatures by the
 * grammar, and a malformed message is an error naming what was wrong, never a read past the end.
 * @module
 */

/** A value of type `v`: its signature and the value. */
export interface Variant {
  readonly sig: string;
  readonly value: unknown;
}

/** Builds a variant. */
export const variant = (sig: string, value: unknown): Variant => ({ sig, value });

/** A D-Bus error reply (`org.freedesktop.systemd1.NoSuchUnit` …), or a broken conversation. */
export class DbusError extends Error {
  /** The error's name (`org.freedesktop.DBus.Error.…`), or `hako.Protocol` for a bad message. */
  readonly dbusName: string;
  constructor(dbusName: string, message: string) {
    super(message);
    this.name = "DbusError";
    this.dbusName = dbusName;
  }
}

const MAX_MESSAGE = 64 * 1024 * 1024; // (the spec's limit is 128 MiB; systemd's replies are small)

const ALIGN: Record<string, number> = {
  y: 1,
  b: 4,
  n: 2,
  q: 2,
  i: 4,
  u: 4,
  x: 8,
  t: 8,
  d: 8,
  s: 4,
  o: 4,
  g: 1,
  h: 4,
  a: 4,
  "(": 8,
  "{": 8,
  v: 1,
};

/** Splits a signature into complete types (`"sa(sv)"` → `["s", "a(sv)"]`). */
export function splitSignature(sig: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < sig.length) {
    const end = typeEnd(sig, i, 0);
    out.push(sig.slice(i, end));
    i = end;
  }
  return out;
}

function typeEnd(sig: string, i: number, depth: number): number {
  if (depth > 32) throw new DbusError("hako.Protocol", `signature ${JSON.stringify(sig)} nests too deep`);
  const c = sig[i];
  if (c === undefined) throw new DbusError("hako.Protocol", `signature ${JSON.stringify(sig)} ends inside a type`);
  if (c === "a") return typeEnd(sig, i + 1, depth + 1);
  if (c === "(" || c === "{") {
    const close = c === "(" ? ")" : "}";
    let j = i + 1;
    while (sig[j] !== close) {
      if (j >= sig.length) throw new DbusError("hako.Protocol", `signature ${JSON.stringify(sig)}: ${c} not closed`);
      j = typeEnd(sig, j, depth + 1);
    }
    return j + 1;
  }
  if (!(c in ALIGN) || c === ")" || c === "}") {
    throw new DbusError("hako.Protocol", `signature ${JSON.stringify(sig)}: unknown type ${JSON.stringify(c)}`);
  }
  return i + 1;
}

/** Marshals values by signature into bytes; offsets count from the start of the message part. */
export class Writer {
  #buf = new Uint8Array(256);
  #view = new DataView(this.#buf.buffer);
  length = 0;

  #grow(n: number): void {
    if (this.length + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.length + n));
    next.set(this.#buf.subarray(0, this.length));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  /** Pads with zeros to a multiple of `n`. */
  align(n: number): void {
    const pad = (n - (this.length % n)) % n;
    this.#grow(pad);
    this.#buf.fill(0, this.length, this.length + pad);
    this.length += pad;
  }

  /** The bytes written so far. */
  bytes(): Uint8Array {
    return this.#buf.slice(0, this.length);
  }

  /** Writes one value of each type in `sig`. */
  write(sig: string, values: readonly unknown[]): void {
    const types = splitSignature(sig);
    if (types.length !== values.length) {
      throw new TypeError(`D-Bus signature ${sig} takes ${types.length} values, got ${values.length}`);
    }
    types.forEach((t, i) => this.#one(t, values[i]));
  }

  #u32(n: number): void {
    this.align(4);
    this.#grow(4);
    this.#view.setUint32(this.length, n, true);
    this.length += 4;
  }

  #text(s: string, lengthBytes: 1 | 4): void {
    const bytes = new TextEncoder().encode(s);
    if (bytes.includes(0)) throw new TypeError(`a D-Bus string holds no NUL: ${JSON.stringify(s)}`);
    if (lengthBytes === 4) this.#u32(bytes.length);
    else {
      if (bytes.length > 255) throw new TypeError(`a D-Bus signature is at most 255 bytes: ${s}`);
      this.#grow(1);
      this.#buf[this.length++] = bytes.length;
    }
    this.#grow(bytes.length + 1);
    this.#buf.set(bytes, this.length);
    this.length += bytes.length;
    this.#buf[this.length++] = 0;
  }

  #one(t: string, v: unknown): void {
    const c = t[0]!;
    switch (c) {
      case "y":
        this.#grow(1);
        this.#buf[this.length++] = Number(v) & 0xff;
        return;
      case "b":
        return this.#u32(v ? 1 : 0);
      case "n":
      case "q":
        this.align(2);
        this.#grow(2);
        this.#view.setUint16(this.length, Number(v) & 0xffff, true);
        this.length += 2;
        return;
      case "i":
      case "h":
      case "u":
        return this.#u32(Number(v) >>> 0);
      case "x":
      case "t":
        this.align(8);
        this.#grow(8);
        if (c === "x") this.#view.setBigInt64(this.length, BigInt(v as bigint), true);
        else this.#view.setBigUint64(this.length, BigInt(v as bigint), true);
        this.length += 8;
        return;
      case "d":
        this.align(8);
        this.#grow(8);
        this.#view.setFloat64(this.length, Number(v), true);
        this.length += 8;
        return;
      case "s":
      case "o":
        return this.#text(String(v), 4);
      case "g":
        return this.#text(String(v), 1);
      case "v": {
        const { sig, value } = v as Variant;
        if (splitSignature(sig).length !== 1) throw new TypeError(`a variant holds one complete type, not ${sig}`);
        this.#text(sig, 1);
        return this.#one(sig, value);
      }
      case "(":
      case "{": {
        this.align(8);
        const inner = splitSignature(t.slice(1, -1));
        const items = v as readonly unknown[];
        inner.forEach((it, i) => this.#one(it, items[i]));
        return;
      }
      case "a": {
        const elem = t.slice(1);
        this.#u32(0);
        const lengthAt = this.length - 4;
        this.align(ALIGN[elem[0]!]!);
        const start = this.length;
        const items = elem[0] === "{" && !Array.isArray(v) ? Object.entries(v as object) : v as readonly unknown[];
        for (const item of items) this.#one(elem, item);
        this.#view.setUint32(lengthAt, this.length - start, true);
        return;
      }
    }
    throw new TypeError(`D-Bus type ${t} cannot be written`);
  }
}

/** Unmarshals values by signature from a message part (offsets from its start). */
export class Reader {
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  offset: number;
  readonly #end: number;

  constructor(buf: Uint8Array, offset = 0, end = buf.length) {
    this.#buf = buf;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.offset = offset;
    this.#end = end;
  }

  #need(n: number, what: string): void {
    if (this.offset + n > this.#end) throw new DbusError("hako.Protocol", `message ends inside ${what}`);
  }

  align(n: number): void {
    this.offset += (n - (this.offset % n)) % n;
    if (this.offset > this.#end) throw new DbusError("hako.Protocol", "message ends inside padding");
  }

  /** Reads one value of each type in `sig`. */
  read(sig: string): unknown[] {
    return splitSignature(sig).map((t) => this.#one(t, 0));
  }

  #u32(): number {
    this.align(4);
    this.#need(4, "a 32-bit value");
    const n = this.#view.getUint32(this.offset, true);
    this.offset += 4;
    return n;
  }

  #text(lengthBytes: 1 | 4): string {
    let n: number;
    if (lengthBytes === 4) n = this.#u32();
    else {
      this.#need(1, "a signature");
      n = this.#buf[this.offset++]!;
    }
    this.#need(n + 1, "a string");
    const s = new TextDecoder("utf-8", { fatal: true }).decode(this.#buf.subarray(this.offset, this.offset + n));
    if (this.#buf[this.offset + n] !== 0) throw new DbusError("hako.Protocol", "a string without its NUL");
    this.offset += n + 1;
    return s;
  }

  #one(t: string, depth: number): unknown {
    if (depth > 64) throw new DbusError("hako.Protocol", "values nest too deep");
    const c = t[0]!;
    switch (c) {
      case "y":
        this.#need(1, "a byte");
        return this.#buf[this.offset++]!;
      case "b":
        return this.#u32() !== 0;
      case "n":
      case "q": {
        this.align(2);
        this.#need(2, "a 16-bit value");
        const n = c === "n" ? this.#view.getInt16(this.offset, true) : this.#view.getUint16(this.offset, true);
        this.offset += 2;
        return n;
      }
      case "i": {
        const n = this.#u32();
        return n | 0;
      }
      case "h":
      case "u":
        return this.#u32();
      case "x":
      case "t": {
        this.align(8);
        this.#need(8, "a 64-bit value");
        const n = c === "x" ? this.#view.getBigInt64(this.offset, true) : this.#view.getBigUint64(this.offset, true);
        this.offset += 8;
        return n;
      }
      case "d": {
        this.align(8);
        this.#need(8, "a double");
        const n = this.#view.getFloat64(this.offset, true);
        this.offset += 8;
        return n;
      }
      case "s":
      case "o":
        return this.#text(4);
      case "g":
        return this.#text(1);
      case "v": {
        const sig = this.#text(1);
        if (splitSignature(sig).length !== 1) throw new DbusError("hako.Protocol", `a variant of ${sig}`);
        return variant(sig, this.#one(sig, depth + 1));
      }
      case "(":
      case "{": {
        this.align(8);
        return splitSignature(t.slice(1, -1)).map((it) => this.#one(it, depth + 1));
      }
      case "a": {
        const n = this.#u32();
        const elem = t.slice(1);
        this.align(ALIGN[elem[0]!]!);
        const end = this.offset + n;
        if (n > this.#end - this.offset) throw new DbusError("hako.Protocol", "an array longer than its message");
        const items: unknown[] = [];
        while (this.offset < end) items.push(this.#one(elem, depth + 1));
        if (this.offset !== end) throw new DbusError("hako.Protocol", "an array's elements overrun its length");
        return items;
      }
    }
    throw new DbusError("hako.Protocol", `type ${t} cannot be read`);
  }
}

/** Message types. */
export const METHOD_CALL = 1, METHOD_RETURN = 2, ERROR = 3, SIGNAL = 4;
const FIELD = {
  path: 1,
  interface: 2,
  member: 3,
  errorName: 4,
  replySerial: 5,
  destination: 6,
  sender: 7,
  signature: 8,
};

/** A message as read. */
export interface Message {
  readonly type: number;
  readonly serial: number;
  readonly path?: string;
  readonly interface?: string;
  readonly member?: string;
  readonly errorName?: string;
  readonly replySerial?: number;
  readonly signature: string;
  readonly body: unknown[];
}

/** A method call to marshal. */
export interface Call {
  readonly destination?: string;
  readonly path: string;
  readonly interface: string;
  readonly member: string;
  readonly signature?: string;
  readonly body?: readonly unknown[];
}

/** Marshals a method call with `serial`. */
export function encodeCall(call: Call, serial: number): Uint8Array {
  const body = new Writer();
  if (call.signature) body.write(call.signature, call.body ?? []);
  const fields: Array<[number, Variant]> = [
    [FIELD.path, variant("o", call.path)],
    [FIELD.interface, variant("s", call.interface)],
    [FIELD.member, variant("s", call.member)],
  ];
  if (call.destination) fields.push([FIELD.destination, variant("s", call.destination)]);
  if (call.signature) fields.push([FIELD.signature, variant("g", call.signature)]);
  const head = new Writer();
  head.write("yyyyuua(yv)", ["l".charCodeAt(0), METHOD_CALL, 0, 1, body.length, serial, fields]);
  head.align(8);
  const out = new Uint8Array(head.length + body.length);
  out.set(head.bytes());
  out.set(body.bytes(), head.length);
  return out;
}

/**
 * The length of the message at the start of `buf` once its fixed header is there, or undefined
 * when fewer than 16 bytes are.
 * @throws {DbusError} For a big-endian or oversized message.
 */
export function messageLength(buf: Uint8Array): number | undefined {
  if (buf.length < 16) return undefined;
  if (buf[0] !== "l".charCodeAt(0)) throw new DbusError("hako.Protocol", "a big-endian or unknown message");
  const view = new DataView(buf.buffer, buf.byteOffset, 16);
  const bodyLength = view.getUint32(4, true), fieldsLength = view.getUint32(12, true);
  const total = 16 + fieldsLength + ((8 - (fieldsLength % 8)) % 8) + bodyLength;
  if (bodyLength > MAX_MESSAGE || fieldsLength > MAX_MESSAGE || total > MAX_MESSAGE) {
    throw new DbusError("hako.Protocol", `a message of ${total} bytes`);
  }
  return total;
}

/** Unmarshals one whole message (`buf` is exactly its bytes). */
export function decodeMessage(buf: Uint8Array): Message {
  const r = new Reader(buf);
  const [, type, , version, bodyLength, serial, fields] = r.read("yyyyuua(yv)") as [
    number,
    number,
    number,
    number,
    number,
    number,
    Array<[number, Variant]>,
  ];
  if (version !== 1) throw new DbusError("hako.Protocol", `protocol version ${version}`);
  r.align(8);
  const get = (code: number) => fields.find(([c]) => c === code)?.[1].value;
  const signature = (get(FIELD.signature) as string | undefined) ?? "";
  if (r.offset + (bodyLength as number) !== buf.length) {
    throw new DbusError("hako.Protocol", "a body of the wrong length");
  }
  const body = new Reader(buf.subarray(r.offset)).read(signature);
  return {
    type,
    serial,
    path: get(FIELD.path) as string | undefined,
    interface: get(FIELD.interface) as string | undefined,
    member: get(FIELD.member) as string | undefined,
    errorName: get(FIELD.errorName) as string | undefined,
    replySerial: get(FIELD.replySerial) as number | undefined,
    signature,
    body,
  };
}
