// hako-log for aarch64: ffi/log_relay_x86_64.S's relay, instruction for instruction where the two
// ISAs allow (see that file for what it does: argv, fds, the timestamps, the rotation). ffi/log_relay.ts
// embeds the assembled bytes (LOG_RELAY_AARCH64_HEX) in a tiny static ELF (EM_AARCH64);
// `bash tools/assemble.sh ffi/log_relay_aarch64.S` regenerates them and tests/logs_test.ts checks
// they match. Run under qemu-user only (tests/logs_test.ts), never on aarch64 hardware.
//
// Registers kept across the whole program: x28 the buffers (BSS), x27 the flush threshold, x19
// bytes in OUTBUF, x20 the end of the input, x21 the next input byte, x22 scratch across a call.
// A function that calls another keeps x29/x30 on the stack. `svc #0` keeps every register but x0.

        .text
        .globl _start

        .set BSS, 0x600000              // the writable segment (see ffi/log_relay.ts)
        .set MAX, 0                     // u64 the cap
        .set SIZE, 8                    // u64 bytes in FILE now
        .set LOGFD, 16                  // i64 FILE's fd (negative: none)
        .set NAME, 24                   // char* FILE
        .set LINESTART, 40              // u8 the next byte starts a line
        .set HEADSTAMP, 41              // u8 OUTBUF starts with a timestamp
        .set TS, 48                     // struct timespec
        .set TMP, 64                    // u64 scratch
        .set STAMP, 128                 // the current timestamp (31 bytes)
        .set STATBUF, 192               // struct stat (128 bytes on aarch64; st_size at 48 as on x86-64)
        .set NAME1, 512                 // FILE ".1" (at most 500 bytes)
        .set INBUF, 4096
        .set INCAP, 65536
        .set OUTBUF, 69632
        .set OUTCAP, 65536
        .set STAMPLEN, 31
        .set MINMAX, 4096
        // O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC (arm64's O_NOFOLLOW: 0o100000)
        .set OPENFLAGS, 0x88442
        .set O_EXCL, 0x80
        // aarch64 syscall numbers (ffi/_syscalls_aarch64.ts)
        .set SYS_fcntl, 25
        .set SYS_renameat, 38
        .set SYS_ftruncate, 46
        .set SYS_openat, 56
        .set SYS_close, 57
        .set SYS_read, 63
        .set SYS_write, 64
        .set SYS_pread64, 67
        .set SYS_fstat, 80
        .set SYS_exit_group, 94
        .set SYS_clock_gettime, 113
        .set SYS_ppoll, 73
        .set SYS_prctl, 167

        // a 32-bit constant into a register
        .macro  mov32 reg, value
        movz    \reg, #((\value) & 0xffff)
        movk    \reg, #(((\value) >> 16) & 0xffff), lsl #16
        .endm

_start:
        mov32   x28, BSS
        ldr     x1, [sp]                // argc
        cmp     x1, #3
        b.lo    .Lusage
        ldr     x0, [sp, #16]           // argv[1]: MAX
        bl      parse_u64
        cmn     x0, #1
        b.eq    .Lusage
        mov     x1, #MINMAX
        cmp     x0, x1
        b.hs    1f
        mov     x0, x1
1:      str     x0, [x28, #MAX]
        mov32   x27, OUTCAP             // x27: flush OUTBUF at this many bytes (at most MAX)
        cmp     x0, x27
        b.hs    2f
        mov     x27, x0
2:      ldr     x1, [sp, #24]           // argv[2]: FILE
        str     x1, [x28, #NAME]
        add     x2, x28, #NAME1
        mov     w3, #500
3:      ldrb    w4, [x1]
        cbz     w4, 4f
        strb    w4, [x2]
        add     x1, x1, #1
        add     x2, x2, #1
        subs    w3, w3, #1
        b.eq    .Lusage
        b       3b
4:      mov     w4, #0x312e             // ".1"
        strh    w4, [x2]
        strb    wzr, [x2, #2]
        mov     x0, #4                  // close(4): the memfd this program came from
        mov     x8, #SYS_close
        svc     #0
        mov     x0, #0                  // fcntl(0, F_SETFL, 0): blocking reads
        mov     x1, #4
        mov     x2, #0
        mov     x8, #SYS_fcntl
        svc     #0
        mov     x0, #15                 // prctl(PR_SET_NAME, "hako-log")
        adr     x1, comm
        mov     x8, #SYS_prctl
        svc     #0
        mov     w2, #0
        bl      open_log
        mov     w0, #1
        strb    w0, [x28, #LINESTART]
        ldr     x0, [x28, #LOGFD]
        tbnz    x0, #63, .Lread
        add     x1, x28, #STATBUF       // fstat(fd, STATBUF): a relay started again appends
        mov     x8, #SYS_fstat
        svc     #0
        cbnz    x0, .Lread
        ldr     x0, [x28, #STATBUF + 48]        // st_size
        str     x0, [x28, #SIZE]
        cbz     x0, .Lread
        sub     x3, x0, #1              // pread64(fd, TMP, 1, size - 1): does FILE end inside a line?
        ldr     x0, [x28, #LOGFD]
        add     x1, x28, #TMP
        mov     x2, #1
        mov     x8, #SYS_pread64
        svc     #0
        cmp     x0, #1
        b.ne    .Lread
        ldrb    w0, [x28, #TMP]
        cmp     w0, #10
        b.eq    .Lread
        strb    wzr, [x28, #LINESTART]

.Lread:                                 // x19: bytes in OUTBUF
        mov     x19, #0
        mov     x0, #0                  // read(0, INBUF, INCAP)
        add     x1, x28, #INBUF
        mov32   x2, INCAP
        mov     x8, #SYS_read
        svc     #0
        cmn     x0, #4                  // EINTR
        b.eq    .Lread
        cmn     x0, #11                 // EAGAIN: fd 0 made non-blocking by another holder of its
        b.eq    .Lwait                  //   file description (hako attach's copy of a pty master)
        cmp     x0, #0
        b.le    .Leof
        mov     x20, x0
        bl      make_stamp
        add     x21, x28, #INBUF        // x21: the next input byte, x20: the end of the input
        add     x20, x20, x21
.Lbyte:
        cmp     x21, x20
        b.hs    .Lchunk
        ldrb    w0, [x28, #LINESTART]
        cbz     w0, .Lcopy
        add     x0, x19, #STAMPLEN      // a timestamp first, with room for it
        cmp     x0, x27
        b.ls    5f
        bl      flush
5:      cbnz    x19, 6f
        mov     w0, #1
        strb    w0, [x28, #HEADSTAMP]
6:      add     x1, x28, #STAMP
        add     x2, x28, #OUTBUF
        add     x2, x2, x19
        mov     x3, #STAMPLEN
7:      ldrb    w4, [x1], #1
        strb    w4, [x2], #1
        subs    x3, x3, #1
        b.ne    7b
        add     x19, x19, #STAMPLEN
        strb    wzr, [x28, #LINESTART]
.Lcopy:
        ldrb    w0, [x21], #1
        add     x1, x28, #OUTBUF
        strb    w0, [x1, x19]
        add     x19, x19, #1
        cmp     w0, #10
        b.ne    7f
        mov     w0, #1
        strb    w0, [x28, #LINESTART]
7:      cmp     x19, x27
        b.lo    .Lbyte
        bl      flush
        b       .Lbyte
.Lchunk:
        bl      flush
        b       .Lread
.Lwait:                                 // ppoll({0, POLLIN}, 1, NULL, NULL, 8), then read again
        add     x0, x28, #TMP
        mov     x1, #0x100000000        // fd 0, events POLLIN (1 << 32: the short at +4), revents 0
        str     x1, [x0]
        mov     x1, #1
        mov     x2, #0
        mov     x3, #0
        mov     x4, #8
        mov     x8, #SYS_ppoll
        svc     #0
        b       .Lread
.Leof:
        mov     x0, #0                  // exit_group(0)
        mov     x8, #SYS_exit_group
        svc     #0
.Lusage:
        mov     x0, #2                  // exit_group(2)
        mov     x8, #SYS_exit_group
        svc     #0

// Writes OUTBUF's x19 bytes to FILE (rotating first when they would take it past MAX); x19 = 0.
flush:
        cbz     x19, 9f
        stp     x29, x30, [sp, #-16]!
        ldr     x0, [x28, #LOGFD]
        tbz     x0, #63, 1f
        mov     w2, #0                  // no FILE yet (or any more): try to make it again
        bl      open_log
1:      ldr     x0, [x28, #SIZE]
        cbz     x0, 8f
        add     x0, x0, x19
        ldr     x1, [x28, #MAX]
        cmp     x0, x1
        b.ls    8f
        bl      rotate
        ldrb    w0, [x28, #HEADSTAMP]
        cbnz    w0, 8f
        mov     w0, #'+'                // the new FILE starts inside a line: "…Z+" first
        strb    w0, [x28, #STAMP + 30]
        add     x1, x28, #STAMP
        mov     x2, #STAMPLEN
        bl      write_all
        mov     w0, #' '
        strb    w0, [x28, #STAMP + 30]
8:      add     x1, x28, #OUTBUF
        mov     x2, x19
        bl      write_all
        mov     x19, #0
        strb    wzr, [x28, #HEADSTAMP]
        ldp     x29, x30, [sp], #16
9:      ret

// write(LOGFD, x1, x2) until all is written; an error drops the rest. SIZE grows by what was.
write_all:
        ldr     x0, [x28, #LOGFD]
        tbnz    x0, #63, 2f
        mov     x9, x1
        mov     x10, x2
1:      cbz     x10, 2f
        ldr     x0, [x28, #LOGFD]
        mov     x1, x9
        mov     x2, x10
        mov     x8, #SYS_write
        svc     #0
        cmn     x0, #4                  // EINTR
        b.eq    1b
        cmp     x0, #0
        b.le    2f
        add     x9, x9, x0
        sub     x10, x10, x0
        ldr     x3, [x28, #SIZE]
        add     x3, x3, x0
        str     x3, [x28, #SIZE]
        b       1b
2:      ret

// FILE -> FILE.1, a new FILE; or FILE emptied when that cannot be done. SIZE = 0.
rotate:
        stp     x29, x30, [sp, #-16]!
        mov     x0, #3                  // renameat(3, FILE, 3, FILE.1)
        ldr     x1, [x28, #NAME]
        mov     x2, #3
        add     x3, x28, #NAME1
        mov     x8, #SYS_renameat
        svc     #0
        cbnz    x0, 2f
        ldr     x22, [x28, #LOGFD]
        mov     w2, #O_EXCL
        bl      open_log
        ldr     x0, [x28, #LOGFD]
        tbnz    x0, #63, 1f
        mov     x0, x22                 // close(the old FILE, now FILE.1)
        mov     x8, #SYS_close
        svc     #0
        str     xzr, [x28, #SIZE]
        ldp     x29, x30, [sp], #16
        ret
1:      str     x22, [x28, #LOGFD]      // no new FILE: the old one goes on, emptied
2:      ldr     x0, [x28, #LOGFD]       // ftruncate(LOGFD, 0)
        mov     x1, #0
        mov     x8, #SYS_ftruncate
        svc     #0
        str     xzr, [x28, #SIZE]
        ldp     x29, x30, [sp], #16
        ret

// LOGFD = openat(3, FILE, OPENFLAGS | w2, 0600) (negative: the error)
open_log:
        mov     x0, #3
        ldr     x1, [x28, #NAME]
        mov32   w9, OPENFLAGS
        orr     w2, w2, w9
        mov     x3, #0x180
        mov     x8, #SYS_openat
        svc     #0
        str     x0, [x28, #LOGFD]
        ret

// STAMP = "YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ " for clock_gettime(CLOCK_REALTIME), UTC. The date is
// Howard Hinnant's civil_from_days (unsigned: the clock is past 1970).
make_stamp:
        stp     x29, x30, [sp, #-16]!
        mov     x0, #0                  // clock_gettime(CLOCK_REALTIME, TS)
        add     x1, x28, #TS
        mov     x8, #SYS_clock_gettime
        svc     #0
        ldr     x0, [x28, #TS]          // seconds since the epoch
        mov32   x1, 86400
        udiv    x2, x0, x1
        msub    x10, x2, x1, x0         // x10: seconds into the day
        mov32   x1, 719468
        add     x2, x2, x1              // z: days since 0000-03-01
        mov32   x1, 146097
        udiv    x11, x2, x1             // x11: era (400 years)
        msub    x12, x11, x1, x2        // x12: doe, the day of the era
        mov     x1, #1460               // yoe = (doe - doe/1460 + doe/36524 - doe/146096) / 365
        udiv    x3, x12, x1
        sub     x4, x12, x3
        mov32   x1, 36524
        udiv    x3, x12, x1
        add     x4, x4, x3
        mov32   x1, 146096
        udiv    x3, x12, x1
        sub     x4, x4, x3
        mov     x1, #365
        udiv    x5, x4, x1              // x5: yoe
        mov     x1, #400
        madd    x11, x11, x1, x5        // x11: y = yoe + era * 400
        mov     x1, #365                // doy = doe - (365 * yoe + yoe/4 - yoe/100)
        mul     x4, x5, x1
        add     x4, x4, x5, lsr #2
        mov     x1, #100
        udiv    x3, x5, x1
        sub     x4, x4, x3
        sub     x13, x12, x4            // x13: doy
        add     x3, x13, x13, lsl #2    // mp = (5 * doy + 2) / 153
        add     x3, x3, #2
        mov     x1, #153
        udiv    x6, x3, x1              // x6: mp
        mul     x3, x6, x1              // d = doy - (153 * mp + 2) / 5 + 1
        add     x3, x3, #2
        mov     x1, #5
        udiv    x3, x3, x1
        sub     x13, x13, x3
        add     x13, x13, #1            // x13: d
        cmp     x6, #10                 // m = mp < 10 ? mp + 3 : mp - 9
        b.lo    1f
        sub     x6, x6, #12
1:      add     x6, x6, #3              // x6: m
        cmp     x6, #2                  // January and February count in the next year
        b.hi    2f
        add     x11, x11, #1
2:      add     x7, x28, #STAMP         // x7: where the next character goes
        mov     x0, x11
        mov     x1, #4
        bl      digits
        mov     w0, #'-'
        strb    w0, [x7], #1
        mov     x0, x6
        mov     x1, #2
        bl      digits
        mov     w0, #'-'
        strb    w0, [x7], #1
        mov     x0, x13
        mov     x1, #2
        bl      digits
        mov     w0, #'T'
        strb    w0, [x7], #1
        mov     x1, #3600
        udiv    x0, x10, x1
        msub    x10, x0, x1, x10
        mov     x1, #2
        bl      digits
        mov     w0, #':'
        strb    w0, [x7], #1
        mov     x1, #60
        udiv    x0, x10, x1
        msub    x10, x0, x1, x10
        mov     x1, #2
        bl      digits
        mov     w0, #':'
        strb    w0, [x7], #1
        mov     x0, x10
        mov     x1, #2
        bl      digits
        mov     w0, #'.'
        strb    w0, [x7], #1
        ldr     x0, [x28, #TS + 8]      // nanoseconds
        mov     x1, #9
        bl      digits
        mov     w0, #0x205a             // "Z "
        strh    w0, [x7]
        ldp     x29, x30, [sp], #16
        ret

// Writes x1 decimal digits of x0 at x7 (zero-padded) and moves x7 past them. Uses x2-x5.
digits:
        add     x7, x7, x1
        mov     x2, x7
        mov     x3, #10
1:      udiv    x4, x0, x3
        msub    x5, x4, x3, x0
        add     w5, w5, #'0'
        strb    w5, [x2, #-1]!
        mov     x0, x4
        subs    x1, x1, #1
        b.ne    1b
        ret

// x0 = the decimal number at x0 (NUL-terminated), or -1 when it is not one (the x86-64 relay's
// overflow rules: the ×10 may not overflow signed, the + may not carry).
parse_u64:
        mov     x1, x0
        mov     x0, #0
        ldrb    w2, [x1]
        cbz     w2, 2f
        mov     x3, #10
1:      ldrb    w2, [x1]
        cbz     w2, 3f
        sub     w2, w2, #'0'
        cmp     w2, #9
        b.hi    2f
        mul     x4, x0, x3
        smulh   x5, x0, x3
        cmp     x5, x4, asr #63
        b.ne    2f
        adds    x0, x4, x2
        b.cs    2f
        add     x1, x1, #1
        b       1b
2:      mov     x0, #-1
3:      ret

comm:   .asciz  "hako-log"
