// SPDX-License-Identifier: Apache-2.0
/*
 * Ground truth for mixed-mode stacks: a hand-written assembly function with
 * no CFI at all (no .cfi directives, so no FDE covers it) between two C
 * frames that have CFI and, built as asm_trampoline_nofp, no frame pointers.
 * It keeps the frame-pointer chain (push rbp; mov rbp, rsp), as V8's
 * builtins do. For argv[1] seconds the stacks read
 * spin <- inner <- asm_trampoline <- outer <- main.
 *
 * With argv[2] "broken", outer calls inner through two assembly functions
 * without CFI whose rbp is not a frame pointer, in turn: asm_stack_junk
 * points it at a record on the stack whose return address is in no mapping,
 * asm_far_frame at a record in .data (far from the stack) whose return
 * address is main's. Their stacks must end at them, cut: no unwind info.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Each call to spin is about 10 ms: the clock read between calls is rare. */
#define SPIN_ITERATIONS 20000000UL

void asm_trampoline(void (*function)(void));
void asm_stack_junk(void (*function)(void));
void asm_far_frame(void (*function)(void));

/* A frame record (saved rbp, return address) that is not on the stack. */
unsigned long far_frame[2];

/* void asm_trampoline(void (*function)(void)): calls function in a frame of its own. */
__asm__(".text\n"
	".globl asm_trampoline\n"
	".type asm_trampoline, @function\n"
	"asm_trampoline:\n"
	"	push %rbp\n"
	"	mov %rsp, %rbp\n"
	"	call *%rdi\n"
	"	pop %rbp\n"
	"	ret\n"
	".size asm_trampoline, .-asm_trampoline\n"
	".globl asm_stack_junk\n"
	".type asm_stack_junk, @function\n"
	"asm_stack_junk:\n"
	"	push %rbp\n"
	"	sub $32, %rsp\n"
	"	movq $0, (%rsp)\n"
	"	movq $0x5a5a5a58, 8(%rsp)\n"
	"	mov %rsp, %rbp\n"
	"	call *%rdi\n"
	"	add $32, %rsp\n"
	"	pop %rbp\n"
	"	ret\n"
	".size asm_stack_junk, .-asm_stack_junk\n"
	".globl asm_far_frame\n"
	".type asm_far_frame, @function\n"
	"asm_far_frame:\n"
	"	push %rbp\n"
	"	lea far_frame(%rip), %rbp\n"
	"	call *%rdi\n"
	"	pop %rbp\n"
	"	ret\n"
	".size asm_far_frame, .-asm_far_frame\n");

static volatile unsigned long sink;

/* Not static: gcc neither clones nor renames externally visible functions. */
__attribute__((noinline)) void spin(unsigned long iterations)
{
	for (unsigned long i = 0; i < iterations; i++)
		sink += i;
}

__attribute__((noinline)) void inner(void)
{
	spin(SPIN_ITERATIONS);
	__asm__ volatile("" ::: "memory"); /* keeps inner a real frame, not a tail call */
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) void outer(double seconds, int broken)
{
	double end = now() + seconds;

	while (now() < end) {
		if (!broken) {
			asm_trampoline(inner);
			continue;
		}
		asm_stack_junk(inner);
		asm_far_frame(inner);
	}
	__asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv)
{
	far_frame[1] = (unsigned long)main + 4;
	outer(argc > 1 ? atof(argv[1]) : 5, argc > 2 && !strcmp(argv[2], "broken"));
	return 0;
}
