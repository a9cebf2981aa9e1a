/* Supplies the read and write callbacks that Debian's SyncEvolution 2.0.0 hands libcurl as
   NULL (it then crashes on its first POST): each calls the transport agent's own member. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stddef.h>

enum { WRITEFUNCTION = 20011, READFUNCTION = 20012 };
typedef int (*setopt_fn)(void *, int, ...);
typedef size_t (*member_fn)(void *self, void *buffer, size_t len);

static size_t call(const char *name, void *buf, size_t size, size_t n, void *self) {
    member_fn f = (member_fn)dlsym(RTLD_DEFAULT, name);
    return f ? f(self, buf, size * n) : 0;
}
static size_t on_read(void *buf, size_t size, size_t n, void *self) {
    return call("_ZN7SyncEvo18CurlTransportAgent8readDataEPvm", buf, size, n, self);
}
static size_t on_write(void *buf, size_t size, size_t n, void *self) {
    return call("_ZN7SyncEvo18CurlTransportAgent9writeDataEPvm", buf, size, n, self);
}

int curl_easy_setopt(void *h, int opt, ...) {
    static setopt_fn real;
    if (!real) {
        real = (setopt_fn)dlvsym(RTLD_NEXT, "curl_easy_setopt", "CURL_GNUTLS_3");
        if (!real) real = (setopt_fn)dlsym(RTLD_NEXT, "curl_easy_setopt");
    }
    va_list ap;
    va_start(ap, opt);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (opt == READFUNCTION && !arg) arg = (void *)on_read;
    if (opt == WRITEFUNCTION && !arg) arg = (void *)on_write;
    return real(h, opt, arg);
}
