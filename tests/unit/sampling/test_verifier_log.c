// SPDX-License-Identifier: Apache-2.0
/* agent/sampling/verifier_log: the verifier's reason out of its log. */
#include <string.h>

#include "agent/sampling/verifier_log.h"
#include "tests/unit/testing.h"

/* A real refusal, as this project's probe got it from a 6.18 kernel (abridged). */
static const char refused[] =
	"func#0 @0\n"
	"0: R1=ctx() R10=fp0\n"
	"; __u32 key = 0; @ features.bpf.c:55\n"
	"0: (b7) r1 = 0                        ; R1_w=0\n"
	"24: (18) r4 = 0x5                     ; R4=func()\n"
	"26: (b7) r5 = 0                       ; R5=0\n"
	"27: (85) call bpf_task_work_schedule_resume_impl#65360\n"
	"sleepable callback in a program that is not sleepable\n"
	"kfunc bpf_task_work_schedule_resume_impl#65360 failed callback verification\n"
	"processed 24 insns (limit 1000000) max_states_per_insn 0 total_states 2\n";

static void test_reason_after_last_instruction(void)
{
	char reason[160];

	verifier_log__reason(refused, reason, sizeof(reason));
	CHECK_STR(reason, "sleepable callback in a program that is not sleepable");
}

static void test_no_instruction_takes_first_line(void)
{
	char reason[160];

	verifier_log__reason("invalid argument\nmore\n", reason, sizeof(reason));
	CHECK_STR(reason, "invalid argument");
	verifier_log__reason("", reason, sizeof(reason));
	CHECK_STR(reason, "");
}

/* The instruction last in the log, nothing after it: its own line, not past the end. */
static void test_instruction_last(void)
{
	char reason[160];

	verifier_log__reason("load failed\n3: (95) exit\n", reason, sizeof(reason));
	CHECK_STR(reason, "load failed");
}

static void test_truncated_to_size(void)
{
	char reason[11];

	memset(reason, 'x', sizeof(reason));
	verifier_log__reason(refused, reason, sizeof(reason));
	CHECK_STR(reason, "sleepable ");
	verifier_log__reason(refused, reason, 0); /* writes nothing */
}

/* A line that starts with digits without a colon after them is no instruction. */
static void test_digits_without_colon(void)
{
	char reason[160];

	verifier_log__reason("12 insns\nbad\n", reason, sizeof(reason));
	CHECK_STR(reason, "12 insns");
}

TEST_MAIN("verifier_log", TEST(test_reason_after_last_instruction),
	  TEST(test_no_instruction_takes_first_line), TEST(test_instruction_last),
	  TEST(test_truncated_to_size), TEST(test_digits_without_colon))
