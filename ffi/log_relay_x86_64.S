# hako-log: the relay between a daemonized container's stdout/stderr and its log file, for x86-64
# (see ffi/log_relay.ts, which embeds the assembled bytes in a tiny static ELF and runs it from a
# sealed memfd; `bash tools/assemble.sh ffi/log_relay_x86_64.S` regenerates them and
# tests/logs_test.ts checks they match).
#
# It is its own process (conmon's role, in ~600 bytes of code and 140 KiB of buffers): no libc, no
# runtime, nothing shared with the supervisor, so it keeps working when the supervisor dies.
#
#   argv: hako-log MAX FILE [LABEL]   MAX the cap in bytes (at least 4096), FILE a name in fd 3
#   fd 0: the read end of the container's FIFO (opened O_NONBLOCK by the spawner; made blocking here),
#         or the pty master of a container on a terminal, whose file description hako attach makes
#         non-blocking for its writes (a read that finds nothing then waits in poll: EAGAIN is not EOF)
#   fd 3: the container's directory (O_PATH), where FILE and FILE.1 live
#   fd 4: this program's memfd (closed at once)
#
# It reads what the container writes and appends it to FILE with a timestamp at the start of every
# line: "2006-01-02T15:04:05.000000000Z " (docker's RFC3339NanoFixed and a space; the time of the
# read that brought the line's first byte). When the next write would take FILE past MAX, FILE is
# renamed FILE.1 (replacing the previous one) and a new FILE is made (O_EXCL, O_NOFOLLOW): the two
# hold at most 2 × (MAX + 31) bytes whatever the rate. Every file starts with a timestamp: one that
# starts inside a line has a '+' for the space ("…Z+": the line goes on from the file before).
# When FILE cannot be renamed or made (its directory was deleted), it is emptied instead. A write
# that fails (ENOSPC) drops what it held: a full disk never blocks the container. EOF (every writer
# gone: the container ended) ends the relay with status 0; bad arguments end it with status 2.

        .intel_syntax noprefix
        .text
        .globl _start

        .set BSS, 0x600000              # the writable segment (see ffi/log_relay.ts)
        .set MAX, 0                     # u64 the cap
        .set SIZE, 8                    # u64 bytes in FILE now
        .set LOGFD, 16                  # i64 FILE's fd (negative: none)
        .set NAME, 24                   # char* FILE
        .set LINESTART, 40              # u8 the next byte starts a line
        .set HEADSTAMP, 41              # u8 OUTBUF starts with a timestamp
        .set TS, 48                     # struct timespec
        .set TMP, 64                    # u64 scratch
        .set STAMP, 128                 # the current timestamp (31 bytes)
        .set STATBUF, 192               # struct stat (144 bytes)
        .set NAME1, 512                 # FILE ".1" (at most 500 bytes)
        .set INBUF, 4096
        .set INCAP, 65536
        .set OUTBUF, 69632
        .set OUTCAP, 65536
        .set STAMPLEN, 31
        .set MINMAX, 4096
        # O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC
        .set OPENFLAGS, 0xa0442
        .set O_EXCL, 0x80

_start:
        mov     r15d, BSS
        mov     rcx, [rsp]              # argc
        cmp     rcx, 3
        jb      .Lusage
        mov     rdi, [rsp + 16]         # argv[1]: MAX
        call    parse_u64
        cmp     rax, -1
        je      .Lusage
        cmp     rax, MINMAX
        jae     1f
        mov     eax, MINMAX
1:      mov     [r15 + MAX], rax
        mov     r12d, OUTCAP            # r12: flush OUTBUF at this many bytes (at most MAX)
        cmp     rax, r12
        jae     2f
        mov     r12, rax
2:      mov     rsi, [rsp + 24]         # argv[2]: FILE
        mov     [r15 + NAME], rsi
        lea     rdi, [r15 + NAME1]
        mov     ecx, 500
3:      mov     al, [rsi]
        test    al, al
        jz      4f
        mov     [rdi], al
        inc     rsi
        inc     rdi
        dec     ecx
        jz      .Lusage
        jmp     3b
4:      mov     word ptr [rdi], 0x312e  # ".1"
        mov     byte ptr [rdi + 2], 0
        mov     eax, 3                  # close(4): the memfd this program came from
        mov     edi, 4
        syscall
        mov     eax, 72                 # fcntl(0, F_SETFL, 0): blocking reads
        xor     edi, edi
        mov     esi, 4
        xor     edx, edx
        syscall
        mov     eax, 157                # prctl(PR_SET_NAME, "hako-log")
        mov     edi, 15
        lea     rsi, [rip + comm]
        syscall
        xor     edx, edx
        call    open_log
        mov     byte ptr [r15 + LINESTART], 1
        mov     rdi, [r15 + LOGFD]
        test    rdi, rdi
        js      .Lread
        mov     eax, 5                  # fstat(fd, STATBUF): a relay started again appends
        lea     rsi, [r15 + STATBUF]
        syscall
        test    rax, rax
        jnz     .Lread
        mov     rax, [r15 + STATBUF + 48]       # st_size
        mov     [r15 + SIZE], rax
        test    rax, rax
        jz      .Lread
        lea     r10, [rax - 1]          # pread64(fd, TMP, 1, size - 1): does FILE end inside a line?
        mov     eax, 17
        mov     rdi, [r15 + LOGFD]
        lea     rsi, [r15 + TMP]
        mov     edx, 1
        syscall
        cmp     rax, 1
        jne     .Lread
        cmp     byte ptr [r15 + TMP], 10
        je      .Lread
        mov     byte ptr [r15 + LINESTART], 0

.Lread:                                 # rbx: bytes in OUTBUF
        xor     ebx, ebx
        xor     eax, eax                # read(0, INBUF, INCAP)
        xor     edi, edi
        lea     rsi, [r15 + INBUF]
        mov     edx, INCAP
        syscall
        cmp     rax, -4                 # EINTR
        je      .Lread
        cmp     rax, -11                # EAGAIN: fd 0 made non-blocking by another holder of its
        je      .Lwait                  #   file description (hako attach's copy of a pty master)
        test    rax, rax
        jle     .Leof
        mov     r14, rax
        call    make_stamp
        lea     rsi, [r15 + INBUF]      # rsi: the next input byte, r14: the end of the input
        add     r14, rsi
.Lbyte:
        cmp     rsi, r14
        jae     .Lchunk
        cmp     byte ptr [r15 + LINESTART], 0
        je      .Lcopy
        lea     rax, [rbx + STAMPLEN]   # a timestamp first, with room for it
        cmp     rax, r12
        jbe     5f
        call    flush_keep
5:      test    rbx, rbx
        jnz     6f
        mov     byte ptr [r15 + HEADSTAMP], 1
6:      mov     r13, rsi
        lea     rsi, [r15 + STAMP]
        lea     rdi, [r15 + OUTBUF + rbx]
        mov     ecx, STAMPLEN
        rep movsb
        mov     rsi, r13
        add     rbx, STAMPLEN
        mov     byte ptr [r15 + LINESTART], 0
.Lcopy:
        movzx   eax, byte ptr [rsi]
        inc     rsi
        mov     [r15 + OUTBUF + rbx], al
        inc     rbx
        cmp     al, 10
        jne     7f
        mov     byte ptr [r15 + LINESTART], 1
7:      cmp     rbx, r12
        jb      .Lbyte
        call    flush_keep
        jmp     .Lbyte
.Lchunk:
        call    flush
        jmp     .Lread
.Lwait:                                 # poll({0, POLLIN}, 1, -1), then read again
        mov     qword ptr [r15 + TMP], 0
        mov     word ptr [r15 + TMP + 4], 1
        mov     eax, 7
        lea     rdi, [r15 + TMP]
        mov     esi, 1
        mov     edx, -1
        syscall
        jmp     .Lread
.Leof:
        mov     eax, 231                # exit_group(0)
        xor     edi, edi
        syscall
.Lusage:
        mov     eax, 231                # exit_group(2)
        mov     edi, 2
        syscall

# flush with rsi kept
flush_keep:
        push    rsi
        call    flush
        pop     rsi
        ret

# Writes OUTBUF's rbx bytes to FILE (rotating first when they would take it past MAX); rbx = 0.
flush:
        test    rbx, rbx
        jz      9f
        cmp     qword ptr [r15 + LOGFD], 0
        jge     1f
        xor     edx, edx                # no FILE yet (or any more): try to make it again
        call    open_log
1:      mov     rax, [r15 + SIZE]
        test    rax, rax
        jz      8f
        add     rax, rbx
        cmp     rax, [r15 + MAX]
        jbe     8f
        call    rotate
        cmp     byte ptr [r15 + HEADSTAMP], 0
        jne     8f
        mov     byte ptr [r15 + STAMP + 30], '+'    # the new FILE starts inside a line: "…Z+" first
        lea     rsi, [r15 + STAMP]
        mov     edx, STAMPLEN
        call    write_all
        mov     byte ptr [r15 + STAMP + 30], ' '
8:      lea     rsi, [r15 + OUTBUF]
        mov     rdx, rbx
        call    write_all
        xor     ebx, ebx
        mov     byte ptr [r15 + HEADSTAMP], 0
9:      ret

# write(LOGFD, rsi, rdx) until all is written; an error drops the rest. SIZE grows by what was.
write_all:
        mov     rdi, [r15 + LOGFD]
        test    rdi, rdi
        js      2f
1:      test    rdx, rdx
        jz      2f
        mov     eax, 1
        syscall
        cmp     rax, -4                 # EINTR
        je      1b
        test    rax, rax
        jle     2f
        add     rsi, rax
        sub     rdx, rax
        add     [r15 + SIZE], rax
        jmp     1b
2:      ret

# FILE -> FILE.1, a new FILE; or FILE emptied when that cannot be done. SIZE = 0.
rotate:
        mov     eax, 264                # renameat(3, FILE, 3, FILE.1)
        mov     edi, 3
        mov     rsi, [r15 + NAME]
        mov     edx, 3
        lea     r10, [r15 + NAME1]
        syscall
        test    rax, rax
        jnz     2f
        push    qword ptr [r15 + LOGFD]
        mov     edx, O_EXCL
        call    open_log
        pop     rdi
        cmp     qword ptr [r15 + LOGFD], 0
        jl      1f
        mov     eax, 3                  # close(the old FILE, now FILE.1)
        syscall
        mov     qword ptr [r15 + SIZE], 0
        ret
1:      mov     [r15 + LOGFD], rdi      # no new FILE: the old one goes on, emptied
2:      mov     eax, 77                 # ftruncate(LOGFD, 0)
        mov     rdi, [r15 + LOGFD]
        xor     esi, esi
        syscall
        mov     qword ptr [r15 + SIZE], 0
        ret

# LOGFD = openat(3, FILE, OPENFLAGS | edx, 0600) (negative: the error)
open_log:
        mov     eax, 257
        mov     edi, 3
        mov     rsi, [r15 + NAME]
        or      edx, OPENFLAGS
        mov     r10d, 0x180
        syscall
        mov     [r15 + LOGFD], rax
        ret

# STAMP = "YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ " for clock_gettime(CLOCK_REALTIME), UTC. The date is
# Howard Hinnant's civil_from_days (unsigned: the clock is past 1970).
make_stamp:
        mov     eax, 228                # clock_gettime(CLOCK_REALTIME, TS)
        xor     edi, edi
        lea     rsi, [r15 + TS]
        syscall
        mov     rax, [r15 + TS]         # seconds since the epoch
        xor     edx, edx
        mov     ecx, 86400
        div     rcx
        mov     r8, rdx                 # r8: seconds into the day
        add     rax, 719468             # z: days since 0000-03-01
        xor     edx, edx
        mov     ecx, 146097
        div     rcx
        mov     r10, rax                # r10: era (400 years)
        mov     r11, rdx                # r11: doe, the day of the era
        mov     rax, r11                # yoe = (doe - doe/1460 + doe/36524 - doe/146096) / 365
        xor     edx, edx
        mov     ecx, 1460
        div     rcx
        mov     rsi, r11
        sub     rsi, rax
        mov     rax, r11
        xor     edx, edx
        mov     ecx, 36524
        div     rcx
        add     rsi, rax
        mov     rax, r11
        xor     edx, edx
        mov     ecx, 146096
        div     rcx
        sub     rsi, rax
        mov     rax, rsi
        xor     edx, edx
        mov     ecx, 365
        div     rcx
        mov     rdi, rax                # rdi: yoe
        imul    r10, r10, 400
        add     r10, rdi                # r10: y = yoe + era * 400
        imul    rsi, rdi, 365           # doy = doe - (365 * yoe + yoe/4 - yoe/100)
        mov     rax, rdi
        shr     rax, 2
        add     rsi, rax
        mov     rax, rdi
        xor     edx, edx
        mov     ecx, 100
        div     rcx
        sub     rsi, rax
        mov     r9, r11
        sub     r9, rsi                 # r9: doy
        lea     rax, [r9 + r9 * 4 + 2]  # mp = (5 * doy + 2) / 153
        xor     edx, edx
        mov     ecx, 153
        div     rcx
        mov     rsi, rax                # rsi: mp
        imul    rax, rsi, 153           # d = doy - (153 * mp + 2) / 5 + 1
        add     rax, 2
        xor     edx, edx
        mov     ecx, 5
        div     rcx
        sub     r9, rax
        inc     r9                      # r9: d
        cmp     rsi, 10                 # m = mp < 10 ? mp + 3 : mp - 9
        jb      1f
        sub     rsi, 12
1:      add     rsi, 3                  # rsi: m
        cmp     rsi, 2                  # January and February count in the next year
        ja      2f
        inc     r10
2:      lea     rdi, [r15 + STAMP]
        mov     rax, r10
        mov     ecx, 4
        call    digits
        mov     byte ptr [rdi], '-'
        inc     rdi
        mov     rax, rsi
        mov     ecx, 2
        call    digits
        mov     byte ptr [rdi], '-'
        inc     rdi
        mov     rax, r9
        mov     ecx, 2
        call    digits
        mov     byte ptr [rdi], 'T'
        inc     rdi
        mov     rax, r8
        xor     edx, edx
        mov     ecx, 3600
        div     rcx
        mov     r8, rdx
        mov     ecx, 2
        call    digits
        mov     byte ptr [rdi], ':'
        inc     rdi
        mov     rax, r8
        xor     edx, edx
        mov     ecx, 60
        div     rcx
        mov     r8, rdx
        mov     ecx, 2
        call    digits
        mov     byte ptr [rdi], ':'
        inc     rdi
        mov     rax, r8
        mov     ecx, 2
        call    digits
        mov     byte ptr [rdi], '.'
        inc     rdi
        mov     rax, [r15 + TS + 8]     # nanoseconds
        mov     ecx, 9
        call    digits
        mov     word ptr [rdi], 0x205a  # "Z "
        ret

# Writes rcx decimal digits of rax at rdi (zero-padded) and moves rdi past them. Uses r11, r13.
digits:
        add     rdi, rcx
        mov     r11, rdi
        mov     r13d, 10
1:      xor     edx, edx
        div     r13
        add     dl, '0'
        dec     r11
        mov     [r11], dl
        dec     rcx
        jnz     1b
        ret

# rax = the decimal number at rdi (NUL-terminated), or -1 when it is not one.
parse_u64:
        xor     eax, eax
        cmp     byte ptr [rdi], 0
        je      2f
1:      movzx   ecx, byte ptr [rdi]
        test    ecx, ecx
        jz      3f
        sub     ecx, '0'
        cmp     ecx, 9
        ja      2f
        imul    rax, rax, 10
        jo      2f
        add     rax, rcx
        jc      2f
        inc     rdi
        jmp     1b
2:      mov     rax, -1
3:      ret

comm:   .asciz  "hako-log"
