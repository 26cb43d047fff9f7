/* glibc's fortified fprintf, for musl. Debian's LLVM libunwind (libunwind-16-dev),
 * which packaging/build-static.sh links into the musl binary for std's
 * backtraces, was built against glibc and calls __fprintf_chk in its debug
 * logging; musl has no _chk functions. */
#include <stdarg.h>
#include <stdio.h>

int __fprintf_chk(FILE *stream, int flag, const char *format, ...)
{
    va_list args;
    int written;

    (void)flag;
    va_start(args, format);
    written = vfprintf(stream, format, args);
    va_end(args);
    return written;
}
