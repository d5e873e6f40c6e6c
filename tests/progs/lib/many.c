// SPDX-License-Identifier: Apache-2.0
/*
 * Ground truth for lazy binding: 4096 exported functions, and many_run,
 * which calls each once through the library's PLT. Loaded with RTLD_LAZY,
 * every first call goes through ld.so's lazy-binding trampoline
 * (_dl_runtime_resolve_xsavec and kin), whose frame is kept in rbx: stacks
 * read [ld.so's resolver <- trampoline] <- many_run <- run_many <- main.
 * Exported and -fPIC, so the calls are neither inlined nor direct.
 */
/* clang-format lays these out differently on each run: kept as written. */
/* clang-format off */
#define MANY_16(m, p) \
	m(p##0) m(p##1) m(p##2) m(p##3) m(p##4) m(p##5) m(p##6) m(p##7) \
	m(p##8) m(p##9) m(p##a) m(p##b) m(p##c) m(p##d) m(p##e) m(p##f)
#define MANY_256(m, p) \
	MANY_16(m, p##0) MANY_16(m, p##1) MANY_16(m, p##2) MANY_16(m, p##3) \
	MANY_16(m, p##4) MANY_16(m, p##5) MANY_16(m, p##6) MANY_16(m, p##7) \
	MANY_16(m, p##8) MANY_16(m, p##9) MANY_16(m, p##a) MANY_16(m, p##b) \
	MANY_16(m, p##c) MANY_16(m, p##d) MANY_16(m, p##e) MANY_16(m, p##f)
#define MANY_4096(m) \
	MANY_256(m, f0) MANY_256(m, f1) MANY_256(m, f2) MANY_256(m, f3) \
	MANY_256(m, f4) MANY_256(m, f5) MANY_256(m, f6) MANY_256(m, f7) \
	MANY_256(m, f8) MANY_256(m, f9) MANY_256(m, fa) MANY_256(m, fb) \
	MANY_256(m, fc) MANY_256(m, fd) MANY_256(m, fe) MANY_256(m, ff)
/* clang-format on */
#define MANY_DEFINE(n)                                                                             \
	int many_##n(int x)                                                                        \
	{                                                                                          \
		return x * 3 + 1;                                                                  \
	}
#define MANY_CALL(n) x = many_##n(x);

MANY_4096(MANY_DEFINE)

int many_run(int x)
{
	MANY_4096(MANY_CALL)
	return x;
}
