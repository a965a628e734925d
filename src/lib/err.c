/* err.c - strings for the error list in err.h. */
#include "err.h"

const char *err_str(int code)
{
	switch (code) {
	case CE_OK:
		return "success";
#define CE_CASE(name, value, text) case name: return text;
	CE_LIST(CE_CASE)
#undef CE_CASE
	default:
		return "unknown error";
	}
}
