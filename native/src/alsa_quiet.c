/* ALSA prints configuration errors (e.g. "cannot find card '0'") straight to stderr while
 * cpal probes devices. On a machine without sound hardware that is a dozen lines of noise
 * before our one clear error. This installs a handler that drops them. */
#include <stdarg.h>

typedef void (*snd_lib_error_handler_t)(const char *file, int line, const char *function,
                                        int err, const char *fmt, ...);
extern int snd_lib_error_set_handler(snd_lib_error_handler_t handler);

static void native_alsa_silent(const char *file, int line, const char *function, int err,
                               const char *fmt, ...) {
    (void)file; (void)line; (void)function; (void)err; (void)fmt;
}

int native_alsa_quiet(void) {
    return snd_lib_error_set_handler(native_alsa_silent);
}
