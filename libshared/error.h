/* error: formatted error texts for error_r out-parameters.
 *
 * mf_errorf returns a thread-local string, valid until this thread has made
 * MF_ERROR_SLOTS more calls.  Errors may therefore be composed one level deep:
 *   *error_r = mf_errorf("%s: %s", field, inner_error);
 * Callers that keep an error longer copy it. */
#ifndef MF_ERROR_H
#define MF_ERROR_H

#define MF_ERROR_SLOTS 8
#define MF_ERROR_MAX 1024

const char *mf_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
