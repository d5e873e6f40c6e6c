// SPDX-License-Identifier: Apache-2.0
/*
 * Ground truth for C++: a class template in a namespace sorts with
 * std::sort and a comparator that burns CPU, through a virtual call, so
 * stacks run through template instantiations down to main.
 */
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <vector>

namespace kiln_test {

static volatile unsigned long sink;

struct Job {
	virtual ~Job() = default;
	virtual void run(int rounds) = 0;
};

template <typename T> class Sorter : public Job {
public:
	void run(int rounds) override
	{
		for (int r = 0; r < rounds; r++) {
			std::vector<T> values(256);
			for (auto &v : values)
				v = static_cast<T>(std::rand());
			std::sort(values.begin(), values.end(), &Sorter::slow_less);
		}
	}

private:
	__attribute__((noinline)) static bool slow_less(const T &a, const T &b)
	{
		for (int i = 0; i < 300; i++)
			sink = sink * 31 + i;
		return a < b;
	}
};

} // namespace kiln_test

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? std::atof(argv[1]) : 5;
	auto start = std::chrono::steady_clock::now();
	kiln_test::Job *job = new kiln_test::Sorter<double>();

	while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() <
	       seconds)
		job->run(10);
	delete job;
	return 0;
}
