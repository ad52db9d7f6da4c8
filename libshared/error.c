#include "error.h"

#include <stdarg.h>
#include <stdio.h>

const char *mf_errorf(const char *fmt, ...)
{
	static _Thread_local char slots[MF_ERROR_SLOTS][MF_ERROR_MAX];
	static _Thread_local unsigned next;
	char *s = slots[next++ % MF_ERROR_SLOTS];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s, MF_ERROR_MAX, fmt, ap);
	va_end(ap);
	return s;
}
