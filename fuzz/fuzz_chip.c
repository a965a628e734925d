/*
 * fuzz_chip.c - libFuzzer target: hostile request bodies into the emulated
 * secure chip's handler (chip_handle), as the box would send them over its
 * host or control channel. Input: role u8 (low bit: 0 control, 1 host) |
 * op u8 | body. The chip has a fixed OTP and vendor 0x4ADC active, so the
 * ladder chains (K-LAD 0x01, ECM 0x02, paired card ECW 0x03) are reached,
 * and the recording op PVR_CRYPT (seeds pvr-seal, pvr-open-bad).
 * tests/stb/test_chip.c replays fuzz/corpus/chip.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "stb/chip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t resp[CHIP_MAX_BODY];
	static const uint8_t vendor[4] = { 0, 0, 0x4A, 0xDC };
	struct chip_otp otp;
	struct chip *c = NULL;
	size_t rl = 0;

	if (size < 2)
		return 0;
	memset(&otp, 0, sizeof(otp));
	otp.chip_id = 0xC0FFEE;
	memset(otp.root, 0x42, sizeof(otp.root));
	if (chip_new(&otp, true, &c) != 0)
		return 0;
	if (chip_handle(c, CHIP_ROLE_CONTROL, CHIP_OP_SET_VENDOR, vendor, sizeof(vendor), resp, sizeof(resp), &rl) != 0)
		abort();
	(void)chip_handle(c, (data[0] & 1) ? CHIP_ROLE_HOST : CHIP_ROLE_CONTROL, data[1], data + 2, size - 2, resp,
		sizeof(resp), &rl);
	chip_free(c);
	return 0;
}
