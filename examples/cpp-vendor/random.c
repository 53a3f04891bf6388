/* random: a compiled Lambda bootstrap (custom runtime) in plain C, built on a machine whose glibc
 * is newer than Lambda's: it answers every event with numbers from arc4random(), which glibc added
 * in 2.36, while Amazon Linux 2023 stops at 2.34. It speaks the Runtime API (HTTP/1.1 on
 * $AWS_LAMBDA_RUNTIME_API) with plain sockets, one connection per request. */
#define _GNU_SOURCE /* strcasestr */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static char host[256], port[16];

/* Send one request; return the response (headers and body) in a malloc'd buffer. */
static char *http(const char *method, const char *path, const char *body) {
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(host, port, &hints, &ai) != 0) return NULL;
    int fd = socket(ai->ai_family, ai->ai_socktype, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) { freeaddrinfo(ai); return NULL; }
    freeaddrinfo(ai);
    char head[512];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(head, sizeof head, "%s /2018-06-01/runtime/%s HTTP/1.1\r\nHost: %s\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n", method, path, host, blen);
    if (write(fd, head, n) != n || (blen && write(fd, body, blen) != (ssize_t)blen)) { close(fd); return NULL; }
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap + 1);
    ssize_t r;
    while ((r = read(fd, buf + len, cap - len)) > 0) {
        len += r;
        if (len == cap) buf = realloc(buf, (cap *= 2) + 1);
    }
    close(fd);
    buf[len] = '\0';
    return buf;
}

int main(void) {
    const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
    if (!api || !strchr(api, ':')) return 1;
    snprintf(host, sizeof host, "%.*s", (int)(strchr(api, ':') - api), api);
    snprintf(port, sizeof port, "%s", strchr(api, ':') + 1);
    for (;;) {
        char *next = http("GET", "invocation/next", NULL);
        if (!next) return 1;
        char id[128] = "", *h = strcasestr(next, "\nLambda-Runtime-Aws-Request-Id:");
        if (h) sscanf(h + strlen("\nLambda-Runtime-Aws-Request-Id:"), " %127[^\r\n]", id);
        free(next);
        char path[256], body[128];
        snprintf(path, sizeof path, "invocation/%s/response", id);
        snprintf(body, sizeof body, "{\"random\":%u,\"below_100\":%u}", arc4random(), arc4random_uniform(100));
        free(http("POST", path, body));
    }
}
