// SPDX-License-Identifier: Apache-2.0
/*
 * Ground truth for symbolization: the hot loop is in an always_inline
 * helper, inlined into a method of a class template in a namespace, so a
 * profile's leaf location must show the helper as its own (inlined) frame
 * with its file and line, above ns::Type<double>::method(int).
 */
#include <chrono>
#include <cstdlib>

namespace ns {

volatile double sink;

__attribute__((always_inline)) inline double accumulate(double x, int rounds)
{
	for (int i = 0; i < rounds; i++)
		x = x * 1.0000001 + sink; /* MARK:hot */
	return x;
}

template <typename T> class Type {
public:
	__attribute__((noinline)) T method(int rounds)
	{
		state = accumulate(state, rounds); /* MARK:call */
		return state;
	}

private:
	T state = 1;
};

} // namespace ns

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? std::atof(argv[1]) : 5;
	auto start = std::chrono::steady_clock::now();
	ns::Type<double> worker;

	while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() <
	       seconds)
		ns::sink = worker.method(100000);
	return 0;
}
