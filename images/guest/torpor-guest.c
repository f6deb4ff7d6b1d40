// torpor-guest: the small static program inside every Torpor guest image.
//
//   torpor-guest agent   clock agent: waits on the virtio-serial port named
//                        "torpor.clock"; the host writes "T <epoch_ms>\n", the
//                        agent sets CLOCK_REALTIME and answers "ok <old_ms> <new_ms>\n".
//   torpor-guest app     reads the machine id and env from /proc/cmdline
//                        (torpor.id=ID torpor.env=BASE64("K=V\0K=V\0...")), exports
//                        them, then runs /app/entrypoint if the image has one, or
//                        serves the default app on :$PORT, 8080 when unset (no fork per request):
//                          /          machine id
//                          /counter   increments an in-memory counter, returns it
//                          /boot      random token made at boot
//                          /time      guest clock, epoch milliseconds (with fraction)
//                          /env       the app's environment, one K=V a line
//                          /log?n=K&ms=M  writes K numbered console lines
//                                     "torpor-log <boot> <i>/<K>", M ms apart (in a child)
//                          /mem?mb=N  allocates and writes N MiB (kept), for measurements;
//                          /mem?pct=P P % of MemAvailable (at most 95)
//                        TORPOR_SLOW_START_MS (image config) busy-works that long first.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void con(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void con(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof buf - 1) n = sizeof buf - 1;
  if (write(1, buf, n) < 0) {}
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* ---------------------------------------------------------------- agent */
static int find_port(char *out, size_t outlen) {
  DIR *d = opendir("/sys/class/virtio-ports");
  if (!d) return -1;
  struct dirent *e;
  int found = -1;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char p[300], name[64] = {0};
    snprintf(p, sizeof p, "/sys/class/virtio-ports/%s/name", e->d_name);
    int fd = open(p, O_RDONLY);
    if (fd < 0) continue;
    int n = read(fd, name, sizeof name - 1);
    close(fd);
    if (n > 0 && strncmp(name, "torpor.clock", 12) == 0) {
      snprintf(out, outlen, "/dev/%s", e->d_name);
      found = 0;
      break;
    }
  }
  closedir(d);
  return found;
}

/* One datagram to the gateway makes the guest ARP for it, so QEMU's user-mode
 * network learns the guest's MAC at once; without it the first forwarded
 * connection waits about a second for slirp's ARP retry. */
static void kick_network(void) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0) return;
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons(9);
  inet_pton(AF_INET, "10.0.2.2", &a.sin_addr);
  if (sendto(s, "x", 1, MSG_DONTWAIT, (struct sockaddr *)&a, sizeof a) < 0) {}
  close(s);
}

static int agent(void) {
  kick_network();
  char dev[300];
  int tries = 0;
  while (find_port(dev, sizeof dev) != 0) {
    if (++tries > 200) { con("torpor-agent: no torpor.clock port\n"); return 1; }
    usleep(50000);
  }
  int fd = -1;
  char line[256];
  size_t len = 0;
  for (;;) {
    if (fd < 0) {
      fd = open(dev, O_RDWR);
      if (fd < 0) { usleep(100000); continue; }
    }
    ssize_t n = read(fd, line + len, sizeof line - 1 - len);
    if (n <= 0) { /* host side not connected: wait and retry */
      if (n < 0 && errno == EINTR) continue;
      usleep(100000);
      continue;
    }
    len += n;
    line[len] = 0;
    char *nl;
    while ((nl = strchr(line, '\n'))) {
      *nl = 0;
      if (line[0] == 'T' && line[1] == ' ') {
        double t = strtod(line + 2, NULL);
        double before = now_ms();
        struct timespec ts;
        ts.tv_sec = (time_t)(t / 1000.0);
        ts.tv_nsec = (long)((t - ts.tv_sec * 1000.0) * 1e6);
        if (ts.tv_nsec < 0) ts.tv_nsec = 0;
        if (ts.tv_nsec > 999999999) ts.tv_nsec = 999999999;
        int rc = clock_settime(CLOCK_REALTIME, &ts);
        char ack[128];
        int k = snprintf(ack, sizeof ack, "%s %.3f %.3f\n", rc == 0 ? "ok" : "err", before, now_ms());
        if (write(fd, ack, k) < 0) {}
      }
      size_t rest = len - (nl + 1 - line);
      memmove(line, nl + 1, rest);
      len = rest;
      line[len] = 0;
    }
    if (len >= sizeof line - 1) len = 0;
  }
}

/* ---------------------------------------------------------------- env */
static int b64v(int c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

static size_t b64dec(const char *in, size_t inlen, char *out) {
  uint32_t acc = 0;
  int bits = 0;
  size_t o = 0;
  for (size_t i = 0; i < inlen; i++) {
    int v = b64v((unsigned char)in[i]);
    if (v < 0) continue;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) { bits -= 8; out[o++] = (acc >> bits) & 0xff; }
  }
  return o;
}

static char machine_id[128] = "unknown";

static void load_cmdline_env(void) {
  static char cmd[4096];
  int fd = open("/proc/cmdline", O_RDONLY);
  if (fd < 0) return;
  int n = read(fd, cmd, sizeof cmd - 1);
  close(fd);
  if (n <= 0) return;
  cmd[n] = 0;
  char *save = NULL;
  for (char *tok = strtok_r(cmd, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
    if (strncmp(tok, "torpor.id=", 10) == 0) {
      snprintf(machine_id, sizeof machine_id, "%s", tok + 10);
      setenv("TORPOR_MACHINE_ID", machine_id, 1);
    } else if (strncmp(tok, "torpor.env=", 11) == 0) {
      const char *b = tok + 11;
      size_t bl = strlen(b);
      char *dec = malloc(bl + 4);
      size_t dl = b64dec(b, bl, dec);
      dec[dl] = 0;
      size_t i = 0;
      while (i < dl) {
        char *kv = dec + i;
        size_t kl = strlen(kv);
        char *eq = strchr(kv, '=');
        if (eq) { *eq = 0; setenv(kv, eq + 1, 1); }
        i += kl + 1;
      }
      free(dec);
    }
  }
}

/* ---------------------------------------------------------------- app */
static char boot_token[40];
static unsigned long counter;

static void slow_start(void) {
  const char *s = getenv("TORPOR_SLOW_START_MS");
  if (!s) return;
  long ms = atol(s);
  if (ms <= 0) return;
  con("torpor-app: slow start, %ld ms of work\n", ms);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  volatile uint64_t h = 1469598103934665603ULL;
  for (;;) {
    for (int i = 0; i < 100000; i++) h = (h ^ (uint64_t)i) * 1099511628211ULL;
    clock_gettime(CLOCK_MONOTONIC, &b);
    if ((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 >= ms) break;
  }
  con("torpor-app: slow start done (%llx)\n", (unsigned long long)(h & 0xffff));
}

static double uptime_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void respond(int c, int code, const char *body) {
  char hdr[256];
  size_t bl = strlen(body);
  int n = snprintf(hdr, sizeof hdr,
                   "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                   code, code == 200 ? "OK" : "Not Found", bl);
  if (write(c, hdr, n) < 0) return;
  size_t off = 0;
  while (off < bl) {
    ssize_t w = write(c, body + off, bl - off);
    if (w <= 0) return;
    off += w;
  }
}

static long qparam(const char *q, const char *key, long def) {
  if (!q) return def;
  size_t kl = strlen(key);
  const char *p = q;
  while (p && *p) {
    if (strncmp(p, key, kl) == 0 && p[kl] == '=') return atol(p + kl + 1);
    p = strchr(p, '&');
    if (p) p++;
  }
  return def;
}

extern char **environ;

static void handle(int c) {
  char req[2048];
  size_t len = 0;
  while (len < sizeof req - 1) {
    ssize_t n = read(c, req + len, sizeof req - 1 - len);
    if (n <= 0) break;
    len += n;
    req[len] = 0;
    if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n")) break;
  }
  req[len] = 0;
  char method[16] = {0}, target[1024] = {0};
  if (sscanf(req, "%15s %1023s", method, target) != 2) { respond(c, 404, "bad request\n"); return; }
  char *q = strchr(target, '?');
  if (q) *q++ = 0;
  char body[8192];
  if (strcmp(target, "/") == 0) {
    snprintf(body, sizeof body, "%s\n", machine_id);
  } else if (strcmp(target, "/counter") == 0) {
    snprintf(body, sizeof body, "%lu\n", ++counter);
  } else if (strcmp(target, "/boot") == 0) {
    snprintf(body, sizeof body, "%s\n", boot_token);
  } else if (strcmp(target, "/time") == 0) {
    snprintf(body, sizeof body, "%.3f\n", now_ms());
  } else if (strcmp(target, "/env") == 0) {
    size_t o = 0;
    body[0] = 0;
    for (char **e = environ; *e && o < sizeof body - 2; e++) {
      int k = snprintf(body + o, sizeof body - o, "%s\n", *e);
      if (k < 0) break;
      o += k;
    }
    body[sizeof body - 1] = 0;
  } else if (strcmp(target, "/log") == 0) {
    long n = qparam(q, "n", 10), ms = qparam(q, "ms", 0);
    if (n < 0) n = 0;
    if (n > 1000000) n = 1000000;
    pid_t p = fork();
    if (p == 0) {
      for (long i = 1; i <= n; i++) {
        con("torpor-log %s %ld/%ld\n", boot_token, i, n);
        if (ms > 0) usleep(ms * 1000);
      }
      _exit(0);
    }
    snprintf(body, sizeof body, "logging %ld lines\n", n);
  } else if (strcmp(target, "/mem") == 0) {
    long mb = qparam(q, "mb", 0), pct = qparam(q, "pct", 0);
    if (pct > 0) { /* pct % of MemAvailable */
      char mi[4096] = {0};
      int fd = open("/proc/meminfo", O_RDONLY);
      if (fd >= 0) { if (read(fd, mi, sizeof mi - 1) < 0) {} close(fd); }
      char *p = strstr(mi, "MemAvailable:");
      long kb = p ? atol(p + 13) : 0;
      mb = kb / 1024 * (pct > 95 ? 95 : pct) / 100;
    }
    long done = 0;
    for (long i = 0; i < mb; i++) {
      char *m = malloc(1 << 20);
      if (!m) break;
      for (long j = 0; j < (1 << 20); j += 4096) m[j] = (char)(i + j + 1);
      done++;
    }
    snprintf(body, sizeof body, "%ld\n", done);
  } else {
    respond(c, 404, "not found\n");
    return;
  }
  respond(c, 200, body);
}

static int app(void) {
  load_cmdline_env();
  if (access("/app/entrypoint", F_OK) == 0) {
    if (chdir("/app") < 0) {}
    con("torpor-app: exec /app/entrypoint\n");
    execl("/bin/sh", "sh", "/app/entrypoint", (char *)NULL);
    con("torpor-app: exec failed: %s\n", strerror(errno));
    return 1;
  }
  unsigned char r[16];
  if (getrandom(r, sizeof r, GRND_INSECURE) != sizeof r) {
    for (int i = 0; i < 16; i++) r[i] = rand() ^ (int)now_ms();
  }
  for (int i = 0; i < 16; i++) sprintf(boot_token + 2 * i, "%02x", r[i]);
  slow_start();
  signal(SIGCHLD, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  const char *port_env = getenv("PORT"); /* the machine's env; the host forwards its url there */
  int port = port_env && atoi(port_env) > 0 && atoi(port_env) < 65536 ? atoi(port_env) : 8080;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 64) < 0) {
    con("torpor-app: listen: %s\n", strerror(errno));
    return 1;
  }
  con("torpor-app: serving %s on :%d boot=%s (%.2fs)\n", machine_id, port, boot_token, uptime_s());
  int first = 1;
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0) continue;
    if (first) {
      first = 0;
      con("torpor-app: first request (%.2fs)\n", uptime_s());
    }
    struct timeval tv = {2, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    handle(c);
    shutdown(c, SHUT_WR);
    close(c);
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "agent") == 0) return agent();
  if (argc > 1 && strcmp(argv[1], "app") == 0) return app();
  con("usage: torpor-guest agent|app\n");
  return 2;
}
