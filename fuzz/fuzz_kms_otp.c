/* fuzz_kms_otp.c - OTP image parser. */
#include <stdint.h>
#include "kms/otp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct otp_image img;

	(void)otp_decode(data, size, &img);
	otp_image_wipe(&img);
	return 0;
}
