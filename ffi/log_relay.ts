/**
 * `hako-log`, the relay that writes a daemonized container's output to its log file: a tiny
 * static x86-64 program (`log_relay_x86_64.S`, embedded below as bytes) wrapped here in a minimal
 * ELF image, kept in a sealed memfd, and started per container from a native child (the
 * {@link SyscallProgram} runner: no JavaScript runs in the child, no runtime is forked).
 *
 * Why a process of its own (what conmon is to podman, containerd-shim's FIFO copy to docker): a
 * file the container appends to itself cannot be capped — nothing stops a writer of hundreds of
 * MB/s between two checks — and the supervisor's event loop must not carry the container's output.
 * A relay reading a pipe gives back-pressure (the container waits while the relay writes), so it
 * can cut the file at exactly the cap, and it knows where lines start, so it can timestamp them.
 * It shares nothing with the supervisor, so the supervisor's death does not stop it; it costs ~140
 * KiB of buffers (touched only as used) and its code pages are shared by every relay.
 *
 * x86-64 and aarch64 have one (`log_relay_aarch64.S`, the same program; run under qemu-user only
 * so far) ({@link logRelaySupported}); elsewhere the supervisor lets the container append to the
 * file itself, as before.
 *
 * @module
 */
import process from "node:process";
import { addressOf, check, checkRetry, errno, libc } from "./libc.ts";
import { SyscallError } from "./errno.ts";
import { SYS } from "./syscalls.ts";
import { HOST_ARCH, readReport, type RunnerArch, spawnProgram, SyscallProgram } from "./spawn.ts";
import {
  EINVAL,
  F_ADD_SEALS,
  F_DUPFD_CLOEXEC,
  F_SEAL_GROW,
  F_SEAL_SEAL,
  F_SEAL_SHRINK,
  F_SEAL_WRITE,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  MFD_EXEC,
  O_CLOEXEC,
  O_RDONLY,
} from "./constants.ts";

/**
 * The relay's machine code, assembled from `ffi/log_relay_x86_64.S` (`bash tools/assemble.sh
 * ffi/log_relay_x86_64.S` prints this string; tests/logs_test.ts checks it against the source
 * where `as` is installed).
 */
export const LOG_RELAY_X86_64_HEX: string =
  "41bf00006000488b0c244883f9030f82e3010000488b7c2410e8b70400004883f8ff0f84cf010000483d001000007305b800" +
  "10000049890741bc000001004c39e073034989c4488b74241849897718498dbf00020000b9f40100008a0684c07412880748" +
  "ffc648ffc7ffc90f8486010000ebe866c7072e31c6470200b803000000bf040000000f05b84800000031ffbe0400000031d2" +
  "0f05b89d000000bf0f000000488d355a0400000f0531d2e84f02000041c6472801498b7f104885ff784db805000000498db7" +
  "c00000000f054885c0753a498b87f0000000498947084885c0742a4c8d50ffb811000000498b7f10498d7740ba010000000f" +
  "054883f801750c41807f400a740541c647280031db31c031ff498db700100000ba000001000f054883f8fc74e64883f8f50f" +
  "84940000004885c00f8eb40000004989c6e8e0010000498db7001000004901f64c39f6736a41807f2800743d488d431f4c39" +
  "e07605e89d0000004885db750541c64729014989f5498db780000000498dbc1f00100100b91f000000f3a44c89ee4883c31f" +
  "41c64728000fb60648ffc64188841f0010010048ffc33c0a750541c64728014c39e37298e84a000000eb91e84b000000e948" +
  "ffffff49c74740000000006641c747440100b807000000498d7f40be01000000baffffffff0f05e91fffffffb8e700000031" +
  "ff0f05b8e7000000bf020000000f0556e8020000005ec34885db746249837f10007d0731d2e8e3000000498b47084885c074" +
  "354801d8493b07762de86c00000041807f2900752141c6879e0000002b498db780000000ba1f000000e81f00000041c6879e" +
  "00000020498db7001001004889dae80800000031db41c6472900c3498b7f104885ff78234885d2741eb8010000000f054883" +
  "f8fc74ee4885c07e0c4801c64829c249014708ebddc3b808010000bf03000000498b7718ba030000004d8d97000200000f05" +
  "4885c0752a41ff7710ba80000000e8320000005f49837f10007c10b8030000000f0549c7470800000000c349897f10b84d00" +
  "0000498b7f1031f60f0549c7470800000000c3b801010000bf03000000498b771881ca42040a0041ba800100000f05498947" +
  "10c3b8e400000031ff498d77300f05498b473031d2b98051010048f7f14989d048056cfa0a0031d2b9b13a020048f7f14989" +
  "c24989d34c89d831d2b9b405000048f7f14c89de4829c64c89d831d2b9ac8e000048f7f14801c64c89d831d2b9b03a020048" +
  "f7f14829c64889f031d2b96d01000048f7f14889c74d69d2900100004901fa4869f76d0100004889f848c1e8024801c64889" +
  "f831d2b96400000048f7f14829c64d89d94929f14b8d44890231d2b99900000048f7f14889c64869c6990000004883c00231" +
  "d2b90500000048f7f14929c149ffc14883fe0a72044883ee0c4883c6034883fe02770349ffc2498dbf800000004c89d0b904" +
  "000000e893000000c6072d48ffc74889f0b902000000e880000000c6072d48ffc74c89c8b902000000e86d000000c6075448" +
  "ffc74c89c031d2b9100e000048f7f14989d0b902000000e84d000000c6073a48ffc74c89c031d2b93c00000048f7f14989d0" +
  "b902000000e82d000000c6073a48ffc74c89c0b902000000e81a000000c6072e48ffc7498b4738b909000000e80600000066" +
  "c7075a20c34801cf4989fb41bd0a00000031d249f7f580c23049ffcb41881348ffc975edc331c0803f00741f0fb60f85c974" +
  "1f83e93083f9097710486bc00a700a4801c8720548ffc7ebe148c7c0ffffffffc368616b6f2d6c6f6700";

/**
 * The aarch64 relay's machine code, assembled from `ffi/log_relay_aarch64.S` (checked by
 * tests/log_relay_aarch64_test.ts). Run under qemu-user only, never on aarch64 hardware so far.
 */
export const LOG_RELAY_AARCH64_HEX: string =
  "1c0080d21c0ca0f2e10340f93f0c00f183100054e00b40f9490100941f0400b100100054010082d21f0001eb42000054e003" +
  "01aa800300f91b0080d23b00a0f21f001beb42000054fb0300aae10f40f9810f00f982030891833e805224004039e4000034" +
  "44000039210400914204009163040071600d0054f9ffff17c4258652440000795f080039800080d2280780d2010000d40000" +
  "80d2810080d2020080d2280380d2010000d4e00180d201270010e81480d2010000d402008052a90000942000805280a30039" +
  "800b40f98002f8b781030391080a80d2010000d4000200b5807b40f9800700f9a00100b4030400d1800b40f9810301912200" +
  "80d2680880d2010000d41f0400f1a1000054800341391f280071400000549fa30039130080d2000080d281074091020080d2" +
  "2200a0f2e80780d2010000d41f1000b100ffff541f2c00b1400500541f0000f14d060054f40300aa8d000094950740919402" +
  "158bbf0214eb0204005480a3403940020034607e00911f001beb490000542c000094730000b52000805280a7003981030291" +
  "824740914200138be30380d22414403844140038630400f1a1ffff54737e00919fa30039a016403881474091206833387306" +
  "00911f280071610000542000805280a300397f021beb43fcff5414000094e0ffff1712000094cdffff17800301912100c0d2" +
  "010000f9210080d2020080d2030080d2040180d2280980d2010000d4c3ffff17000080d2c80b80d2010000d4400080d2c80b" +
  "80d2010000d4930300b4fd7bbfa9800b40f96000f8b60200805248000094800740f9e00100b40000138b810340f91f0001eb" +
  "690100542600009480a740390001003560058052807b023981030291e20380d20a00009400048052807b023981474091e203" +
  "13aa05000094130080d29fa70039fd7bc1a8c0035fd6800b40f96002f8b7e90301aaea0302aa0a0200b4800b40f9e10309aa" +
  "e2030aaa080880d2010000d41f1000b120ffff541f0000f1ed0000542901008b4a0100cb830740f96300008b830700f9f1ff" +
  "ff17c0035fd6fd7bbfa9600080d2810f40f9620080d283030891c80480d2010000d4a00100b5960b40f90210805211000094" +
  "800b40f9e000f8b7e00316aa280780d2010000d49f0700f9fd7bc1a8c0035fd6960b00f9800b40f9010080d2c80580d20100" +
  "00d49f0700f9fd7bc1a8c0035fd6600080d2810f40f9498890520901a0724200092a033080d2080780d2010000d4800b00f9" +
  "c0035fd6fd7bbfa9000080d281c30091280e80d2010000d4801b40f901308ad22100a0f20208c19a4a80019b814d9fd24101" +
  "a0f24200018b215687d24100a0f24b08c19a6c89019b81b680d28309c19a840103cb81d591d20100a0f28309c19a8400038b" +
  "015687d24100a0f28309c19a840003cba12d80d28508c19a013280d26b15019ba12d80d2a47c019b8408458b810c80d2a308" +
  "c19a840003cb8d0104cba3090d8b63080091211380d26608c19ac37c019b63080091a10080d26308c19aad0103cbad050091" +
  "df2800f143000054c63000d1c60c0091df0800f1480000546b05009187030291e0030baa810080d227000094a0058052e014" +
  "0038e00306aa410080d222000094a0058052e0140038e0030daa410080d21d000094800a8052e014003801c281d24009c19a" +
  "0aa8019b410080d21600009440078052e0140038810780d24009c19a0aa8019b410080d20f00009440078052e0140038e003" +
  "0aaa410080d20a000094c0058052e0140038801f40f9210180d205000094400b8452e0000079fd7bc1a8c0035fd6e700018b" +
  "e20307aa430180d20408c39a8580039ba5c0001145fc1f38e00304aa210400f141ffff54c0035fd6e10300aa000080d22200" +
  "4039e2010034430180d222004039a201003442c000515f24007128010054047c039b057c439bbffc84eba1000054800002ab" +
  "6200005421040091f4ffff1700008092c0035fd668616b6f2d6c6f6700";

/** Whether this host can run the relay (x86-64 or aarch64, and `HAKO_LOG_RELAY` is not `0`). */
export function logRelaySupported(): boolean {
  return (process.arch === "x64" || process.arch === "arm64") && process.env.HAKO_LOG_RELAY !== "0";
}

/** Where the image is loaded, and where its zeroed buffers are (the `BSS` of the .S file). */
const CODE_ADDRESS = 0x400000;
const BSS_ADDRESS = 0x600000;
/** The buffers' size: variables, two 64 KiB buffers, and slack. */
const BSS_BYTES = 0x22000;
const EHDR_BYTES = 64, PHDR_BYTES = 56, PHDRS = 3;

/**
 * The relay as a static ELF executable (pure): the ELF header, three program headers (the code,
 * read and execute; the buffers, read and write and not in the file; a non-executable stack), then
 * the code, entered at its first byte.
 */
export function logRelayImage(
  hex: string = HOST_ARCH === "aarch64" ? LOG_RELAY_AARCH64_HEX : LOG_RELAY_X86_64_HEX,
  arch: RunnerArch = HOST_ARCH,
): Uint8Array {
  const code = new Uint8Array(hex.length / 2);
  for (let i = 0; i < code.length; i++) code[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  const headers = EHDR_BYTES + PHDRS * PHDR_BYTES;
  const image = new Uint8Array(headers + code.length);
  const v = new DataView(image.buffer);
  image.set([0x7f, 0x45, 0x4c, 0x46, 2, /* 64-bit */ 1, /* little-endian */ 1 /* version */]);
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, arch === "aarch64" ? EM_AARCH64 : EM_X86_64, true);
  v.setUint32(20, 1, true); // EV_CURRENT
  v.setBigUint64(24, BigInt(CODE_ADDRESS + headers), true); // e_entry
  v.setBigUint64(32, BigInt(EHDR_BYTES), true); // e_phoff
  v.setUint16(52, EHDR_BYTES, true); // e_ehsize
  v.setUint16(54, PHDR_BYTES, true); // e_phentsize
  v.setUint16(56, PHDRS, true); // e_phnum
  const phdr = (i: number, type: number, flags: number, vaddr: number, filesz: number, memsz: number) => {
    const o = EHDR_BYTES + i * PHDR_BYTES;
    v.setUint32(o, type, true);
    v.setUint32(o + 4, flags, true);
    v.setBigUint64(o + 8, 0n, true); // p_offset
    v.setBigUint64(o + 16, BigInt(vaddr), true); // p_vaddr
    v.setBigUint64(o + 24, BigInt(vaddr), true); // p_paddr
    v.setBigUint64(o + 32, BigInt(filesz), true);
    v.setBigUint64(o + 40, BigInt(memsz), true);
    v.setBigUint64(o + 48, type === PT_LOAD ? 0x1000n : 16n, true); // p_align
  };
  phdr(0, PT_LOAD, PF_R | PF_X, CODE_ADDRESS, image.length, image.length);
  phdr(1, PT_LOAD, PF_R | PF_W, BSS_ADDRESS, 0, BSS_BYTES);
  phdr(2, PT_GNU_STACK, PF_R | PF_W, 0, 0, 0);
  image.set(code, headers);
  return image;
}

const PT_LOAD = 1, PT_GNU_STACK = 0x6474e551;
const EM_X86_64 = 62, EM_AARCH64 = 183;
const PF_X = 1, PF_W = 2, PF_R = 4;

let relayFd: number | undefined;

/**
 * The relay's memfd (made once per process, close-on-exec): written, then sealed against every
 * change (runc seals its own copy the same way), so what runs is what hako embedded.
 */
function relayExecutable(): number {
  if (relayFd !== undefined) return relayFd;
  const { syscall, write, close } = libc();
  const name = new TextEncoder().encode("hako-log\0");
  // MFD_EXEC (Linux 6.3) says the memfd is meant to be executed (vm.memfd_noexec); older kernels
  // refuse the flag, and need nothing.
  const memfd = (flags: number) =>
    Number(syscall(BigInt(SYS.memfd_create), addressOf(name), BigInt(flags), 0n, 0n, 0n));
  let fd = memfd(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (fd === -1 && errno() === EINVAL) fd = memfd(MFD_CLOEXEC | MFD_ALLOW_SEALING);
  check(fd, "memfd_create", ["hako-log"], "make the log relay's executable");
  try {
    const image = logRelayImage();
    for (let done = 0; done < image.length;) {
      const n = checkRetry(
        () => write(fd, image.subarray(done), BigInt(image.length - done)),
        "write",
        ["memfd:hako-log"],
        "write the log relay's executable",
      );
      done += n;
    }
    const seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
    check(Number(syscall(BigInt(SYS.fcntl), BigInt(fd), BigInt(F_ADD_SEALS), BigInt(seals), 0n, 0n)), "fcntl", [
      "F_ADD_SEALS",
    ]);
  } catch (e) {
    close(fd);
    throw e;
  }
  return relayFd = fd;
}

/** What {@link spawnLogRelay} needs. */
export interface LogRelayOptions {
  /** The read end of the container's FIFO (opened O_NONBLOCK, so that opening it never blocks). */
  readonly input: number;
  /** The directory that holds the log (an O_PATH fd is enough). */
  readonly dir: number;
  /** The log's name in it; the previous part is `<file>.1`. */
  readonly file: string;
  /** The cap of one part, in bytes (at least 4096). */
  readonly maxBytes: number;
  /** A word shown in `ps` after the arguments (the container's name). */
  readonly label?: string;
}

/**
 * Starts a relay in a session of its own (so no terminal's or process group's signal reaches it),
 * in `/`, with the input on fd 0, /dev/null on 1 and 2, the directory on 3, and nothing else open.
 * @returns Its pid (a child of this process: reap it).
 * @throws {SyscallError} When it cannot be started (`memfd_create`, `clone`, `execve`…).
 */
export function spawnLogRelay(o: LogRelayOptions): number {
  if (!Number.isSafeInteger(o.maxBytes) || o.maxBytes < 4096) {
    throw new RangeError(`hako ffi: a log relay's cap must be at least 4096 bytes, not ${o.maxBytes}`);
  }
  if (!/^[^/\0]+$/.test(o.file) || o.file === "." || o.file === "..") {
    throw new TypeError(`hako ffi: a log relay's file is a name in its directory, not ${JSON.stringify(o.file)}`);
  }
  const exe = relayExecutable();
  const { syscall, open, pipe2, close, waitpid } = libc();
  const opened: number[] = [];
  try {
    const nul = check(open(new TextEncoder().encode("/dev/null\0"), O_RDONLY | O_CLOEXEC, 0), "open", ["/dev/null"]);
    opened.push(nul);
    // Copies of the sources above 9, so that moving them to 0..4 never overwrites one still to move.
    const high = (fd: number) => {
      const c = check(
        Number(syscall(BigInt(SYS.fcntl), BigInt(fd), BigInt(F_DUPFD_CLOEXEC), 10n, 0n, 0n)),
        "fcntl",
        [
          fd,
          "F_DUPFD_CLOEXEC",
        ],
      );
      opened.push(c);
      return c;
    };
    const [input, devnull, dir, image] = [high(o.input), high(nul), high(o.dir), high(exe)];
    const p = new SyscallProgram();
    const ops: Array<[string, unknown[]]> = [];
    ops[p.call("setsid", [])] = ["setsid", []];
    ops[p.call("chdir", [p.cstring("/")])] = ["chdir", ["/"]]; // pins no directory
    for (const [from, to] of [[input, 0], [devnull, 1], [devnull, 2], [dir, 3], [image, 4]] as const) {
      ops[p.call("dup3", [from, to, 0])] = ["dup3", [from, to]];
    }
    ops[p.call("close_range", [5, 0xffffffff, 0])] = ["close_range", [5]];
    for (const [i, call, shown] of p.resetSignals()) ops[i] = [call, shown];
    const argv = ["hako-log", String(o.maxBytes), o.file, ...(o.label ? [o.label] : [])];
    ops[p.call("execve", [p.cstring("/proc/self/fd/4"), p.cstrings(argv), p.cstrings([])])] = ["execve", [
      "/proc/self/fd/4 (memfd:hako-log)",
    ]];
    const built = p.build();
    const fds = new Int32Array(2);
    check(pipe2(fds, O_CLOEXEC), "pipe2");
    const [rd, wr] = [fds[0]!, fds[1]!];
    let pid: number;
    try {
      built.reportTo(wr);
      try {
        pid = spawnProgram(built, 0);
      } finally {
        close(wr);
      }
      // The program's memory is the child's until it has exec'd (EOF) or reported a failure.
      const r = readReport(rd);
      void built.memory;
      if (r && !r.ready && "op" in r) {
        waitpid(pid, null, 0);
        const [call, args] = ops[r.op] ?? ["spawn", []];
        throw new SyscallError(call, r.errno, args, "start the log relay");
      }
    } finally {
      close(rd);
    }
    return pid;
  } finally {
    for (const fd of opened) close(fd);
  }
}
