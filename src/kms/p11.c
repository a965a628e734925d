/*
 * p11.c - PKCS#11 token access for the KMS master key (p11.h).
 * References: PKCS#11 Cryptographic Token Interface Base Specification
 * v2.40 (OASIS), sections 5.4 (C_Initialize), 5.6 (sessions, C_Login),
 * 5.9-5.10 (C_Encrypt, C_Decrypt), 2.12.3 (CKM_AES_GCM, CK_GCM_PARAMS).
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>
#include <p11-kit/pkcs11.h>
#include "kms/p11.h"
#include "lib/cursor.h"
#include "lib/log.h"
#include "lib/util.h"

#define P11_MAX_SLOTS 64
#define P11_MAX_DATA 4096

struct p11 {
	void *dl;                 /* dlopen handle */
	CK_FUNCTION_LIST_PTR f;   /* the module's function table */
	bool initialized;         /* we called C_Initialize successfully */
	CK_SESSION_HANDLE session;
	bool has_session;
	bool logged_in;
};

typedef CK_RV (*get_function_list_fn)(CK_FUNCTION_LIST_PTR *);

static int rv_err(CK_RV rv)
{
	switch (rv) {
	case CKR_OK:
		return 0;
	case CKR_PIN_INCORRECT:
	case CKR_PIN_INVALID:
	case CKR_PIN_LEN_RANGE:
	case CKR_PIN_EXPIRED:
		return CE_PASSPHRASE;
	case CKR_PIN_LOCKED:
		return CE_BLOCKED;
	case CKR_ENCRYPTED_DATA_INVALID:
	case CKR_ENCRYPTED_DATA_LEN_RANGE:
		return CE_MAC;
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_SLOT_ID_INVALID:
	case CKR_KEY_HANDLE_INVALID:
		return CE_NOT_FOUND;
	case CKR_HOST_MEMORY:
		return CE_NOMEM;
	default:
		return CE_CRYPTO;
	}
}

/* The 32-byte blank-padded label field equals label. */
static bool label_eq(const CK_UTF8CHAR field[32], const char *label)
{
	size_t n = strlen(label);

	if (n > 32 || memcmp(field, label, n) != 0)
		return false;
	for (size_t i = n; i < 32; i++)
		if (field[i] != ' ' && field[i] != '\0')
			return false;
	return true;
}

static int find_slot(struct p11 *p, const char *label, CK_SLOT_ID *slot)
{
	CK_SLOT_ID slots[P11_MAX_SLOTS];
	CK_ULONG n = P11_MAX_SLOTS;
	CK_RV rv;

	rv = p->f->C_GetSlotList(CK_TRUE, slots, &n);
	if (rv == CKR_BUFFER_TOO_SMALL) {
		LOG_ERR("p11", "more than %d slots with a token", P11_MAX_SLOTS);
		return CE_LIMIT;
	}
	if (rv != CKR_OK)
		return rv_err(rv);
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		if (p->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		if (label_eq(ti.label, label)) {
			*slot = slots[i];
			return 0;
		}
	}
	return CE_NOT_FOUND;
}

int p11_open(const struct p11_config *cfg, struct p11 **out)
{
	const char *module = cfg && cfg->module ? cfg->module : P11_DEFAULT_MODULE;
	const char *token = cfg && cfg->token ? cfg->token : P11_DEFAULT_TOKEN;
	CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
	get_function_list_fn getfl;
	struct p11 *p = NULL;
	CK_SLOT_ID slot = 0;
	CK_RV rv;
	int r;

	*out = NULL;
	if (!cfg || !cfg->pin || !*cfg->pin || !*token || strlen(token) > P11_LABEL_MAX)
		return CE_ARG;
	if (!(p = calloc(1, sizeof(*p))))
		return CE_NOMEM;
	/* RTLD_NODELETE: some modules register atexit handlers or threads
	 * that must outlive C_Finalize. */
	if (!(p->dl = dlopen(module, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE))) {
		LOG_ERR("p11", "cannot load PKCS#11 module %s: %s", module, dlerror());
		r = CE_NOT_FOUND;
		goto fail;
	}
	*(void **)&getfl = dlsym(p->dl, "C_GetFunctionList");
	if (!getfl || getfl(&p->f) != CKR_OK || !p->f) {
		LOG_ERR("p11", "%s is not a PKCS#11 module", module);
		r = CE_UNSUPPORTED;
		goto fail;
	}
	rv = p->f->C_Initialize(&args);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		LOG_ERR("p11", "C_Initialize: 0x%lx", (unsigned long)rv);
		r = rv_err(rv);
		goto fail;
	}
	p->initialized = rv == CKR_OK;
	if ((r = find_slot(p, token, &slot)) != 0) {
		if (r == CE_NOT_FOUND)
			LOG_ERR("p11", "no token labelled \"%s\" in %s", token, module);
		goto fail;
	}
	rv = p->f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &p->session);
	if (rv != CKR_OK) {
		LOG_ERR("p11", "C_OpenSession: 0x%lx", (unsigned long)rv);
		r = rv_err(rv);
		goto fail;
	}
	p->has_session = true;
	rv = p->f->C_Login(p->session, CKU_USER, (CK_UTF8CHAR_PTR)(uintptr_t)cfg->pin, (CK_ULONG)strlen(cfg->pin));
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		r = rv_err(rv);
		LOG_ERR("p11", "login to token \"%s\" refused (0x%lx)", token, (unsigned long)rv);
		goto fail;
	}
	p->logged_in = rv == CKR_OK;
	*out = p;
	return 0;
fail:
	p11_close(p);
	return r;
}

void p11_close(struct p11 *p)
{
	if (!p)
		return;
	if (p->logged_in)
		(void)p->f->C_Logout(p->session);
	if (p->has_session)
		(void)p->f->C_CloseSession(p->session);
	if (p->initialized)
		(void)p->f->C_Finalize(NULL);
	if (p->dl)
		dlclose(p->dl);
	free(p);
}

/* The secret-key object whose CKA_ID is id. */
static int find_key(struct p11 *p, const uint8_t id[P11_KEY_ID_BYTES], CK_OBJECT_HANDLE *h)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_ATTRIBUTE tmpl[] = {
		{CKA_CLASS, &cls, sizeof(cls)},
		{CKA_ID, (void *)(uintptr_t)id, P11_KEY_ID_BYTES},
	};
	CK_OBJECT_HANDLE found[2];
	CK_ULONG n = 0;
	CK_RV rv;

	if ((rv = p->f->C_FindObjectsInit(p->session, tmpl, 2)) != CKR_OK)
		return rv_err(rv);
	rv = p->f->C_FindObjects(p->session, found, 2, &n);
	(void)p->f->C_FindObjectsFinal(p->session);
	if (rv != CKR_OK)
		return rv_err(rv);
	if (n == 0)
		return CE_NOT_FOUND;
	if (n > 1) {
		LOG_ERR("p11", "two keys on the token share one CKA_ID");
		return CE_STATE;
	}
	*h = found[0];
	return 0;
}

int p11_key_generate(struct p11 *p, const char *label, uint8_t id[P11_KEY_ID_BYTES])
{
	CK_MECHANISM mech = {CKM_AES_KEY_GEN, NULL, 0};
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG value_len = 32;
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_RV rv;

	if (!p || !label || strlen(label) > 255)
		return CE_ARG;
	if (RAND_bytes(id, P11_KEY_ID_BYTES) != 1)
		return CE_CRYPTO;
	{
		CK_ATTRIBUTE tmpl[] = {
			{CKA_CLASS, &cls, sizeof(cls)},
			{CKA_KEY_TYPE, &kt, sizeof(kt)},
			{CKA_VALUE_LEN, &value_len, sizeof(value_len)},
			{CKA_TOKEN, &yes, sizeof(yes)},
			{CKA_PRIVATE, &yes, sizeof(yes)},
			{CKA_SENSITIVE, &yes, sizeof(yes)},
			{CKA_EXTRACTABLE, &no, sizeof(no)},
			{CKA_ENCRYPT, &yes, sizeof(yes)},
			{CKA_DECRYPT, &yes, sizeof(yes)},
			{CKA_WRAP, &no, sizeof(no)},
			{CKA_UNWRAP, &no, sizeof(no)},
			{CKA_MODIFIABLE, &no, sizeof(no)},
			{CKA_ID, id, P11_KEY_ID_BYTES},
			{CKA_LABEL, (void *)(uintptr_t)label, strlen(label)},
		};
		rv = p->f->C_GenerateKey(p->session, &mech, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &h);
	}
	if (rv != CKR_OK) {
		LOG_ERR("p11", "C_GenerateKey(AES-256): 0x%lx", (unsigned long)rv);
		return rv_err(rv) == CE_NOT_FOUND ? CE_CRYPTO : rv_err(rv);
	}
	return 0;
}

int p11_key_check(struct p11 *p, const uint8_t id[P11_KEY_ID_BYTES])
{
	CK_BBOOL sensitive = CK_FALSE, extractable = CK_TRUE;
	CK_ULONG value_len = 0;
	CK_KEY_TYPE kt = 0;
	CK_ATTRIBUTE a[] = {
		{CKA_SENSITIVE, &sensitive, sizeof(sensitive)},
		{CKA_EXTRACTABLE, &extractable, sizeof(extractable)},
		{CKA_KEY_TYPE, &kt, sizeof(kt)},
		{CKA_VALUE_LEN, &value_len, sizeof(value_len)},
	};
	uint8_t value[64];
	CK_ATTRIBUTE v = {CKA_VALUE, value, sizeof(value)};
	CK_OBJECT_HANDLE h;
	CK_RV rv;
	int r;

	if ((r = find_key(p, id, &h)) != 0)
		return r;
	if ((rv = p->f->C_GetAttributeValue(p->session, h, a, 4)) != CKR_OK)
		return rv_err(rv);
	rv = p->f->C_GetAttributeValue(p->session, h, &v, 1);
	secret_wipe(value, sizeof(value));
	if (rv == CKR_OK || sensitive != CK_TRUE || extractable != CK_FALSE || kt != CKK_AES || value_len != 32) {
		LOG_ERR("p11", "the token key is not a protected AES-256 key (sensitive %d, extractable %d)",
			sensitive, extractable);
		return CE_BLOCKED;
	}
	return 0;
}

int p11_key_destroy(struct p11 *p, const uint8_t id[P11_KEY_ID_BYTES])
{
	CK_OBJECT_HANDLE h;
	int r;

	if ((r = find_key(p, id, &h)) != 0)
		return r;
	return rv_err(p->f->C_DestroyObject(p->session, h));
}

static int gcm(struct p11 *p, bool enc, const uint8_t id[P11_KEY_ID_BYTES], const uint8_t iv[P11_IV_BYTES],
	const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len, uint8_t *out)
{
	CK_GCM_PARAMS gp = {
		.pIv = (CK_BYTE_PTR)(uintptr_t)iv,
		.ulIvLen = P11_IV_BYTES,
		.ulIvBits = 8 * P11_IV_BYTES,
		.pAAD = (CK_BYTE_PTR)(uintptr_t)aad,
		.ulAADLen = (CK_ULONG)aad_len,
		.ulTagBits = 8 * P11_TAG_BYTES,
	};
	CK_MECHANISM mech = {CKM_AES_GCM, &gp, sizeof(gp)};
	CK_OBJECT_HANDLE h;
	size_t want = enc ? len + P11_TAG_BYTES : len - P11_TAG_BYTES;
	/* SoftHSM2 wants room for ciphertext-length output when decrypting
	 * GCM (CKR_BUFFER_TOO_SMALL otherwise): decrypt into tmp. */
	uint8_t tmp[P11_MAX_DATA + P11_TAG_BYTES], *dst = enc ? out : tmp;
	CK_ULONG out_len = (CK_ULONG)(enc ? want : len);
	CK_RV rv;
	int r;

	if (!p || !id || !iv || (aad_len && !aad) || !in || !out || len > P11_MAX_DATA || aad_len > P11_MAX_DATA ||
	    (!enc && len < P11_TAG_BYTES))
		return CE_ARG;
	if ((r = find_key(p, id, &h)) != 0)
		return r;
	rv = enc ? p->f->C_EncryptInit(p->session, &mech, h) : p->f->C_DecryptInit(p->session, &mech, h);
	if (rv != CKR_OK) {
		LOG_ERR("p11", "C_%sInit(CKM_AES_GCM): 0x%lx", enc ? "Encrypt" : "Decrypt", (unsigned long)rv);
		return rv_err(rv) == CE_NOT_FOUND ? CE_NOT_FOUND : CE_CRYPTO;
	}
	/* Single-part call with a big enough buffer: no size query needed. */
	rv = enc ? p->f->C_Encrypt(p->session, (CK_BYTE_PTR)(uintptr_t)in, (CK_ULONG)len, dst, &out_len)
		 : p->f->C_Decrypt(p->session, (CK_BYTE_PTR)(uintptr_t)in, (CK_ULONG)len, dst, &out_len);
	if (!enc) {
		if (rv == CKR_OK && out_len == (CK_ULONG)want)
			memcpy(out, tmp, want);
		secret_wipe(tmp, sizeof(tmp));
	}
	if (rv != CKR_OK) {
		secret_wipe(out, want);
		/* A GCM tag mismatch is reported as one of these by SoftHSM2
		 * and by most HSMs. */
		if (!enc && (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE ||
			     rv == CKR_FUNCTION_FAILED || rv == CKR_GENERAL_ERROR))
			return CE_MAC;
		LOG_ERR("p11", "C_%s(CKM_AES_GCM): 0x%lx", enc ? "Encrypt" : "Decrypt", (unsigned long)rv);
		return rv_err(rv);
	}
	if (out_len != (CK_ULONG)want) {
		secret_wipe(out, want);
		return CE_CRYPTO;
	}
	return 0;
}

int p11_gcm_encrypt(struct p11 *p, const uint8_t id[P11_KEY_ID_BYTES], const uint8_t iv[P11_IV_BYTES],
	const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len, uint8_t *out)
{
	return gcm(p, true, id, iv, aad, aad_len, in, len, out);
}

int p11_gcm_decrypt(struct p11 *p, const uint8_t id[P11_KEY_ID_BYTES], const uint8_t iv[P11_IV_BYTES],
	const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len, uint8_t *out)
{
	return gcm(p, false, id, iv, aad, aad_len, in, len, out);
}

int p11_wrapped_parse(const uint8_t *buf, size_t len, struct p11_wrapped *w)
{
	uint8_t magic[8], version = 0, llen = 0;
	uint16_t n = 0;
	struct cur c;

	if (!w)
		return CE_ARG;
	memset(w, 0, sizeof(*w));
	if (!buf || len > P11W_FILE_MAX)
		return buf ? CE_FORMAT : CE_ARG;
	cur_init(&c, buf, len);
	cur_bytes(&c, magic, sizeof(magic));
	cur_u8(&c, &version);
	cur_u8(&c, &llen);
	if (!c.err && llen == 0)
		cur_fail(&c, CE_FORMAT);
	cur_bytes_max(&c, w->token, P11_LABEL_MAX, llen);
	cur_bytes(&c, w->id, sizeof(w->id));
	cur_bytes(&c, w->iv, sizeof(w->iv));
	cur_u16(&c, &n);
	w->aad_len = c.off;
	if (!c.err && n != 32)
		cur_fail(&c, CE_FORMAT);
	w->ct = cur_ptr(&c, (size_t)n + P11_TAG_BYTES);
	if (cur_end(&c) != 0 || memcmp(magic, P11W_FILE_MAGIC, 8) != 0 || memchr(w->token, '\0', llen)) {
		memset(w, 0, sizeof(*w));
		return CE_FORMAT;
	}
	if (version != 1) {
		memset(w, 0, sizeof(*w));
		return CE_UNSUPPORTED;
	}
	w->token[llen] = '\0';
	w->ct_len = n;
	return 0;
}
