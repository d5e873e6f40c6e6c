// SPDX-License-Identifier: Apache-2.0
/*
 * The C++ binary bench/symbolize.py symbolizes (built -O2 -g, not run for
 * long): the standard library's templates instantiated the way applications
 * use them, so its DWARF has deep inline chains, lambdas, namespaces and
 * long template names.
 */
#include <algorithm>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

namespace bench {

template <typename Key, typename Value> class Index {
public:
	void add(const Key &key, Value value) { entries_[key].push_back(std::move(value)); }

	template <typename Predicate> std::vector<Value> select(Predicate keep) const
	{
		std::vector<Value> out;
		for (const auto &[key, values] : entries_)
			std::copy_if(values.begin(), values.end(), std::back_inserter(out), keep);
		std::sort(out.begin(), out.end());
		return out;
	}

private:
	std::map<Key, std::vector<Value>> entries_;
};

struct Shape {
	virtual ~Shape() = default;
	virtual double area() const = 0;
};

template <int Sides> struct Polygon : Shape {
	explicit Polygon(double side) : side_(side) {}
	double area() const override { return Sides * side_ * side_ / 4.0; }
	double side_;
};

std::vector<std::string> words(const std::string &text)
{
	std::regex word("[A-Za-z]+");
	std::vector<std::string> out;
	for (auto it = std::sregex_iterator(text.begin(), text.end(), word);
	     it != std::sregex_iterator(); ++it)
		out.push_back(it->str());
	return out;
}

std::unordered_map<std::string, int> count(const std::vector<std::string> &all)
{
	std::unordered_map<std::string, int> counts;
	for (const auto &w : all)
		counts[w]++;
	return counts;
}

} // namespace bench

int main(int argc, char **argv)
{
	std::string text = "the quick brown fox jumps over the lazy dog and the cat";
	for (int i = 1; i < argc; i++)
		text += std::string(" ") + argv[i];
	auto all = bench::words(text);
	auto counts = bench::count(all);
	bench::Index<std::string, int> index;
	for (const auto &[word, n] : counts)
		index.add(word, n * static_cast<int>(word.size()));
	auto big = index.select([](int v) { return v > 3; });
	std::vector<std::unique_ptr<bench::Shape>> shapes;
	shapes.push_back(std::make_unique<bench::Polygon<3>>(2.0));
	shapes.push_back(std::make_unique<bench::Polygon<4>>(3.0));
	shapes.push_back(std::make_unique<bench::Polygon<6>>(1.5));
	std::function<double(double, const std::unique_ptr<bench::Shape> &)> add =
		[](double sum, const std::unique_ptr<bench::Shape> &s) { return sum + s->area(); };
	double area = std::accumulate(shapes.begin(), shapes.end(), 0.0, add);
	std::set<std::string> unique(all.begin(), all.end());
	std::ostringstream out;
	out << unique.size() << " words, " << big.size() << " selected, area " << area;
	std::cout << out.str() << std::endl;
	return 0;
}
