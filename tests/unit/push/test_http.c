// SPDX-License-Identifier: Apache-2.0
/*
 * The HTTP transport's classification (statuses, gRPC codes, Retry-After,
 * messages) and one real exchange through libcurl with a server on loopback.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/array.h"
#include "agent/push/curl_api.h"
#include "agent/push/http.h"
#include "agent/push/protocol.h"
#include "agent/push/pyroscope.h"
#include "tests/unit/testing.h"

static void test_status_classes(void)
{
	static const long delivered[] = { 200, 201, 202, 204, 299 };
	static const long retried[] = { 0, 408, 429, 500, 502, 503, 504, 599 };
	static const long rejected[] = { 100, 301, 304, 400, 401, 403, 404, 409, 413, 422, 499 };

	for (size_t i = 0; i < ARRAY_SIZE(delivered); i++)
		CHECK(http_status_outcome(delivered[i]) == PUSH_DELIVERED);
	for (size_t i = 0; i < ARRAY_SIZE(retried); i++)
		CHECK(http_status_outcome(retried[i]) == PUSH_RETRY);
	for (size_t i = 0; i < ARRAY_SIZE(rejected); i++)
		CHECK(http_status_outcome(rejected[i]) == PUSH_REJECTED);
}

static void test_grpc_codes(void)
{
	/* CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, UNAVAILABLE, DATA_LOSS. */
	static const int retried[] = { 1, 4, 8, 10, 14, 15 };

	CHECK(grpc_status_outcome(0) == PUSH_DELIVERED);
	for (int code = 1; code <= 17; code++) {
		bool retry = false;

		for (size_t i = 0; i < ARRAY_SIZE(retried); i++)
			retry |= retried[i] == code;
		CHECK(grpc_status_outcome(code) == (retry ? PUSH_RETRY : PUSH_REJECTED));
	}
	CHECK(grpc_status_outcome(-1) == PUSH_REJECTED);
	CHECK_STR(grpc_status_name(0), "OK");
	CHECK_STR(grpc_status_name(3), "INVALID_ARGUMENT");
	CHECK_STR(grpc_status_name(14), "UNAVAILABLE");
	CHECK_STR(grpc_status_name(16), "UNAUTHENTICATED");
	CHECK_STR(grpc_status_name(17), "?");
	CHECK_STR(grpc_status_name(-1), "?");
}

static uint64_t retry_after(const char *value)
{
	return http_parse_retry_after(value, strlen(value));
}

static void test_retry_after(void)
{
	CHECK(retry_after("0") == 0);
	CHECK(retry_after("7") == 7000);
	CHECK(retry_after("120") == 120000);
	CHECK(retry_after("299") == 299000);
	/* Capped at 5 minutes, without overflow however many digits. */
	CHECK(HTTP_RETRY_AFTER_MAX_MS == 300000);
	CHECK(retry_after("300") == 300000);
	CHECK(retry_after("301") == 300000);
	CHECK(retry_after("86400") == 300000);
	CHECK(retry_after("184467440737095516161844674407370955161") == 300000);
	/* An HTTP date, or nothing: our own backoff decides. */
	CHECK(retry_after("Wed, 21 Oct 2026 07:28:00 GMT") == 0);
	CHECK(retry_after("") == 0);
	/* Only len bytes are read. */
	CHECK(http_parse_retry_after("12345", 2) == 12000);
}

static void test_plain_result(void)
{
	struct http_response response = { .status = 200, .grpc_status = -1 };
	struct push_result result;

	http_response__result(&response, &result);
	CHECK(result.outcome == PUSH_DELIVERED && result.http_status == 200 &&
	      result.grpc_status == -1);

	response = (struct http_response){ .status = 429, .retry_after_ms = 7000 };
	snprintf(response.body, sizeof(response.body), "  slow\r\n\tdown \x01 please\n");
	http_response__result(&response, &result);
	CHECK(result.outcome == PUSH_RETRY && result.http_status == 429 &&
	      result.retry_after_ms == 7000);
	CHECK_STR(result.message, "slow down ? please");

	response = (struct http_response){ .status = 400 };
	http_response__result(&response, &result);
	CHECK(result.outcome == PUSH_REJECTED && result.failure == PUSH_FAILURE_REFUSED);
	CHECK_STR(result.message, "HTTP 400 with no message");

	response = (struct http_response){ .failed = true,
					   .failure = PUSH_FAILURE_CONNECTION,
					   .error = "Connection refused" };
	http_response__result(&response, &result);
	CHECK(result.outcome == PUSH_RETRY && result.http_status == 0 &&
	      result.failure == PUSH_FAILURE_CONNECTION);
	CHECK_STR(result.message, "Connection refused");
}

static struct push_result grpc(long status, bool http2, int grpc_status, const char *message)
{
	struct http_response response = { .status = status,
					  .http2 = http2,
					  .grpc_status = grpc_status };
	struct push_result result;

	snprintf(response.grpc_message, sizeof(response.grpc_message), "%s", message);
	snprintf(response.body, sizeof(response.body), "proxy says no");
	http_response__grpc_result(&response, &result);
	return result;
}

static void test_grpc_result(void)
{
	struct push_result result;

	CHECK(grpc(200, true, 0, "").outcome == PUSH_DELIVERED);
	result = grpc(200, true, 14, "try later");
	CHECK(result.outcome == PUSH_RETRY && result.grpc_status == 14 &&
	      result.failure == PUSH_FAILURE_REFUSED);
	CHECK_STR(result.message, "gRPC UNAVAILABLE (14): try later");
	result = grpc(200, true, 3, "");
	CHECK(result.outcome == PUSH_REJECTED);
	CHECK_STR(result.message, "gRPC INVALID_ARGUMENT (3): no message");
	/* A proxy's answer without grpc-status: by HTTP status, never delivered. */
	result = grpc(502, true, -1, "");
	CHECK(result.outcome == PUSH_RETRY && result.http_status == 502);
	CHECK_STR(result.message, "proxy says no");
	CHECK(grpc(429, true, -1, "").outcome == PUSH_RETRY);
	CHECK(grpc(404, true, -1, "").outcome == PUSH_REJECTED);
	CHECK(grpc(204, true, -1, "").outcome == PUSH_REJECTED);
	/* 200 without grpc-status: not a gRPC server. */
	result = grpc(200, true, -1, "");
	CHECK(result.outcome == PUSH_REJECTED && result.failure == PUSH_FAILURE_BAD_GRPC_STATUS);
	/* A proxy's redirect is not followed either. */
	result = grpc(307, true, -1, "");
	CHECK(result.outcome == PUSH_REJECTED && result.failure == PUSH_FAILURE_REDIRECTED);
	/* A grpc-status that was malformed is rejected with why, whatever else came. */
	struct http_response malformed = { .status = 200,
					   .http2 = true,
					   .grpc_status = -1,
					   .grpc_status_error = "grpc-status \"OK\" is not a "
								"status code" };

	http_response__grpc_result(&malformed, &result);
	CHECK(result.outcome == PUSH_REJECTED && result.failure == PUSH_FAILURE_BAD_GRPC_STATUS &&
	      result.grpc_status == -1);
	CHECK_STR(result.message, "grpc-status \"OK\" is not a status code (HTTP 200)");
	/* HTTP/1: not gRPC, whatever it says. */
	result = grpc(200, false, 0, "");
	CHECK(result.outcome == PUSH_REJECTED);
	CHECK(strstr(result.message, "HTTP/1") != NULL);

	struct http_response failed = { .failed = true, .grpc_status = -1, .error = "timed out" };

	http_response__grpc_result(&failed, &result);
	CHECK(result.outcome == PUSH_RETRY && result.grpc_status == -1);
	CHECK_STR(result.message, "timed out");
}

static void test_escape(void)
{
	char out[64];

	CHECK(http_escape("svc{pid=1,comm=a b}/x-y_z.~\xc3\xa9", out, sizeof(out)) == 0);
	CHECK_STR(out, "svc%7Bpid%3D1%2Ccomm%3Da%20b%7D%2Fx-y_z.~%C3%A9");
	CHECK(http_escape("abc", out, 4) == 0);
	CHECK(http_escape("abc", out, 3) == -ENAMETOOLONG);
	CHECK(http_escape("{", out, 3) == -ENAMETOOLONG);
}

/* A one-request HTTP/1.1 server on loopback that answers with a canned response. */
struct server {
	int listen_fd;
	const char *answer;
	size_t answer_size; /* 0: strlen(answer) */
	size_t answer_sent; /* before the client hung up */
	char request[8192];
	size_t request_size;
};

static void *serve_one(void *ctx)
{
	struct server *server = ctx;
	int fd = accept(server->listen_fd, NULL, NULL);
	size_t want = SIZE_MAX;

	if (fd < 0)
		return NULL;
	while (server->request_size < want && server->request_size < sizeof(server->request) - 1) {
		ssize_t got = read(fd, server->request + server->request_size,
				   sizeof(server->request) - 1 - server->request_size);
		char *end, *length;

		if (got <= 0)
			break;
		server->request_size += (size_t)got;
		server->request[server->request_size] = '\0';
		end = strstr(server->request, "\r\n\r\n");
		length = strcasestr(server->request, "Content-Length:");
		if (end && length)
			want = (size_t)(end + 4 - server->request) + strtoul(length + 15, NULL, 10);
	}
	if (!server->answer_size)
		server->answer_size = strlen(server->answer);
	/* A client that stops reading ends this with EPIPE, not SIGPIPE. */
	while (server->answer_sent < server->answer_size) {
		ssize_t sent = send(fd, server->answer + server->answer_sent,
				    server->answer_size - server->answer_sent, MSG_NOSIGNAL);

		if (sent <= 0)
			break;
		server->answer_sent += (size_t)sent;
	}
	close(fd);
	return NULL;
}

static const struct push_record record = { .pid = 42,
					   .comm = "web",
					   .service_name = "shop",
					   .hostname = "node-1",
					   .start_ns = 5000000000LL,
					   .duration_ns = 1000000000LL };

/*
 * Starts a server answering answer, and sends it one request: a Pyroscope
 * push (ret_result) or, with ret_response, a bare POST.
 */
static void exchange_sized(const char *answer, size_t answer_size, struct server *server,
			   struct push_result *ret_result, struct http_response *ret_response)
{
	struct sockaddr_in addr = { .sin_family = AF_INET,
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(addr);
	struct http_client *client;
	char url[64];
	pthread_t thread;

	*server = (struct server){ .answer = answer, .answer_size = answer_size };
	server->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(server->listen_fd >= 0);
	CHECK(bind(server->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
	CHECK(listen(server->listen_fd, 1) == 0);
	CHECK(getsockname(server->listen_fd, (struct sockaddr *)&addr, &len) == 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/prefix/", ntohs(addr.sin_port));
	pthread_create(&thread, NULL, serve_one, server);
	const struct http_opts opts = { .url = url,
					.connect_timeout_ms = 5000,
					.timeout_ms = 5000 };

	client = http_client__new(&opts);
	CHECK(client != NULL);
	if (client && ret_response)
		CHECK(http_client__post(client, "/bare", NULL, 0, false, "body", 4, ret_response) ==
		      0);
	else if (client)
		CHECK(push_protocol_pyroscope.send(client, &record, (const uint8_t *)"PPROF", 5,
						   ret_result) == 0);
	pthread_join(thread, NULL);
	http_client__free(client);
	close(server->listen_fd);
}

static void exchange(const char *answer, struct server *server, struct push_result *ret_result,
		     struct http_response *ret_response)
{
	exchange_sized(answer, 0, server, ret_result, ret_response);
}

static struct push_result push_once(const char *answer, struct server *server)
{
	struct push_result result = { .outcome = -1 };

	exchange(answer, server, &result, NULL);
	return result;
}

static void test_loopback_exchange(void)
{
	struct server server;
	struct push_result result;
	char error[256];

	if (curl_api_load(error, sizeof(error))) {
		fprintf(stderr, "libcurl not loadable (%s): the loopback test cannot run\n", error);
		CHECK(0);
		return;
	}
	result = push_once("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", &server);
	CHECK(result.outcome == PUSH_DELIVERED && result.http_status == 200);
	/* The path under the URL's prefix, the labels in the name, the profile as the body. */
	const char *line =
		"POST /prefix/ingest?name=shop%7Bservice_name%3Dshop%2Chostname%3Dnode-1%2C"
		"pid%3D42%2Ccomm%3Dweb%7D&from=5&until=6&format=pprof&spyName=kiln "
		"HTTP/1.1\r\n";

	if (strncmp(server.request, line, strlen(line)))
		fprintf(stderr, "request: %s\n", server.request);
	CHECK(!strncmp(server.request, line, strlen(line)));
	CHECK(strcasestr(server.request, "Content-Type: application/octet-stream") != NULL);
	CHECK(server.request_size > 5 &&
	      !memcmp(server.request + server.request_size - 5, "PPROF", 5));

	result = push_once("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n"
			   "Content-Length: 5\r\n\r\nslow\n",
			   &server);
	CHECK(result.outcome == PUSH_RETRY && result.http_status == 429 &&
	      result.retry_after_ms == 7000);
	CHECK_STR(result.message, "slow");

	result = push_once("HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad", &server);
	CHECK(result.outcome == PUSH_REJECTED && result.http_status == 400);
	CHECK_STR(result.message, "bad");

	/* gRPC's status and percent-encoded message; a 100 Continue's headers are forgotten. */
	struct http_response response = {};

	exchange("HTTP/1.1 100 Continue\r\ngrpc-status: 3\r\nRetry-After: 9\r\n\r\n"
		 "HTTP/1.1 200 OK\r\ngrpc-status: 14\r\ngrpc-message: try%20later%21\r\n"
		 "Content-Length: 2\r\n\r\nok",
		 &server, NULL, &response);
	CHECK(!response.failed && response.status == 200 && !response.http2);
	CHECK(response.grpc_status == 14 && response.retry_after_ms == 0);
	CHECK_STR(response.grpc_message, "try later!");
	CHECK_STR(response.body, "ok");
	CHECK(strstr(server.request, "POST /prefix/bare HTTP/1.1\r\n") == server.request);

	/* Nobody listening: no response, a retry. */
	const struct http_opts closed = { .url = "http://127.0.0.1:1",
					  .timeout_ms = 2000,
					  .connect_timeout_ms = 2000 };
	struct http_client *client = http_client__new(&closed);

	CHECK(client && http_client__post(client, "/", NULL, 0, false, "", 0, &response) == 0);
	CHECK(response.failed && response.status == 0 && response.error[0]);
	http_response__result(&response, &result);
	CHECK(result.outcome == PUSH_RETRY && result.failure == PUSH_FAILURE_CONNECTION);
	http_client__free(client);
	curl_api_unload();
}

/* A listening socket on loopback that no one serves; ret_port its port. */
static int listener(unsigned int *ret_port)
{
	struct sockaddr_in addr = { .sin_family = AF_INET,
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	CHECK(fd >= 0);
	CHECK(bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
	CHECK(listen(fd, 4) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&addr, &len) == 0);
	*ret_port = ntohs(addr.sin_port);
	return fd;
}

/* headers, then body_size bytes of body: an answer of any size. */
static char *answer_with_body(const char *headers, size_t body_size, size_t *ret_size)
{
	size_t len = strlen(headers);
	char *answer = malloc(len + body_size + 1);

	CHECK(answer != NULL);
	if (!answer)
		return NULL;
	memcpy(answer, headers, len);
	memset(answer + len, 'x', body_size);
	answer[len + body_size] = '\0';
	*ret_size = len + body_size;
	return answer;
}

static struct push_result push_sized(const char *headers, size_t body_size)
{
	struct push_result result = { .outcome = -1 };
	struct server server;
	size_t size;
	char *answer = answer_with_body(headers, body_size, &size);

	if (answer)
		exchange_sized(answer, size, &server, &result, NULL);
	free(answer);
	return result;
}

/* Answers kiln does not read whole: bodies and headers over their bounds. */
static void test_bounded_answers(void)
{
	static const char streamed[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
	struct push_result result;
	struct server server;
	char headers[128];
	char error[256];

	if (curl_api_load(error, sizeof(error))) {
		fprintf(stderr, "libcurl not loadable (%s): the loopback test cannot run\n", error);
		CHECK(0);
		return;
	}
	/* Up to the bound an answer is read; one byte more and the attempt fails, retried. */
	snprintf(headers, sizeof(headers), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n",
		 HTTP_BODY_MAX);
	result = push_sized(headers, HTTP_BODY_MAX);
	CHECK(result.outcome == PUSH_DELIVERED && result.failure == PUSH_FAILURE_NONE);
	result = push_sized(streamed, HTTP_BODY_MAX);
	CHECK(result.outcome == PUSH_DELIVERED);
	result = push_sized(streamed, HTTP_BODY_MAX + 1);
	CHECK(result.outcome == PUSH_RETRY && result.failure == PUSH_FAILURE_RESPONSE_TOO_LARGE &&
	      result.http_status == 0);
	CHECK_STR(result.message, "response body over 64 KiB, cut off");
	/* 4 MiB without a length: cut off at the bound, not read to the end. */
	result = push_sized(streamed, 4 << 20);
	CHECK(result.failure == PUSH_FAILURE_RESPONSE_TOO_LARGE && result.outcome == PUSH_RETRY);
	/* A length over the bound fails before any of the body is read. */
	result = push_once("HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\nxxxx", &server);
	CHECK(result.outcome == PUSH_RETRY && result.failure == PUSH_FAILURE_RESPONSE_TOO_LARGE);

	/* 100 KiB of headers: over HTTP_HEADERS_MAX. */
	static const char filler[] = "X-Filler: 0123456789012345678901234567890123456789\r\n";
	size_t count = 2 * HTTP_HEADERS_MAX / (sizeof(filler) - 1), head = 17, size;
	char *answer = malloc(head + count * (sizeof(filler) - 1) + 32);

	CHECK(answer != NULL);
	if (answer) {
		memcpy(answer, "HTTP/1.1 200 OK\r\n", head);
		size = head;
		for (size_t i = 0; i < count; i++, size += sizeof(filler) - 1)
			memcpy(answer + size, filler, sizeof(filler) - 1);
		size += (size_t)sprintf(answer + size, "Content-Length: 0\r\n\r\n");
		exchange_sized(answer, size, &server, &result, NULL);
		CHECK(result.outcome == PUSH_RETRY &&
		      result.failure == PUSH_FAILURE_HEADERS_TOO_LARGE);
		CHECK_STR(result.message, "response headers over 64 KiB, cut off");
		free(answer);
	}
	curl_api_unload();
}

/* A redirect is never followed: rejected, naming where it pointed; the target sees nothing. */
static void test_redirect_not_followed(void)
{
	struct push_result result;
	struct server server;
	char answer[256], expected[256], error[256];
	unsigned int port;
	int target;

	if (curl_api_load(error, sizeof(error))) {
		fprintf(stderr, "libcurl not loadable (%s): the loopback test cannot run\n", error);
		CHECK(0);
		return;
	}
	target = listener(&port);
	for (int status = 301; status <= 308; status++) {
		if (status == 304 || status == 305 || status == 306)
			continue;
		snprintf(answer, sizeof(answer),
			 "HTTP/1.1 %d Moved\r\nLocation: http://127.0.0.1:%u/ingest\r\n"
			 "Content-Length: 5\r\n\r\nmoved",
			 status, port);
		result = push_once(answer, &server);
		snprintf(expected, sizeof(expected),
			 "redirect to http://127.0.0.1:%u/ingest, not followed", port);
		CHECK(result.outcome == PUSH_REJECTED &&
		      result.failure == PUSH_FAILURE_REDIRECTED && result.http_status == status);
		CHECK_STR(result.message, expected);
	}
	/* The redirect's target was never connected to. */
	CHECK(accept(target, NULL, NULL) < 0 && errno == EAGAIN);
	close(target);
	/* What a server puts in Location cannot forge a log line. */
	result = push_once("HTTP/1.1 302 Found\r\nLocation: http://a/\x1b[2J\x7f\r\n"
			   "Content-Length: 0\r\n\r\n",
			   &server);
	CHECK_STR(result.message, "redirect to http://a/?[2J?, not followed");
	result = push_once("HTTP/1.1 303 See Other\r\nContent-Length: 0\r\n\r\n", &server);
	CHECK(result.outcome == PUSH_REJECTED && result.failure == PUSH_FAILURE_REDIRECTED);
	CHECK_STR(result.message, "redirect to nowhere (no Location), not followed");
	curl_api_unload();
}

/* grpc-status is 1*DIGIT, once: anything else is unusable, never read as OK. */
static void test_grpc_status_parsing(void)
{
	static const struct {
		const char *headers;
		int status;
		const char *error;
	} cases[] = {
		{ "grpc-status: 14\r\n", 14, "" },
		{ "grpc-status: 0\r\n", 0, "" },
		{ "grpc-status: OK\r\n", -1, "grpc-status \"OK\" is not a status code" },
		{ "grpc-status: 0abc\r\n", -1, "grpc-status \"0abc\" is not a status code" },
		{ "grpc-status: -1\r\n", -1, "grpc-status \"-1\" is not a status code" },
		{ "grpc-status: 1000\r\n", -1, "grpc-status \"1000\" is not a status code" },
		{ "grpc-status:\r\n", -1, "grpc-status \"\" is not a status code" },
		{ "grpc-status: 0\r\ngrpc-status: 13\r\n", -1,
		  "grpc-status given twice (0, then \"13\")" },
		{ "grpc-status: x\r\ngrpc-status: 0\r\n", -1,
		  "grpc-status \"x\" is not a status code" },
	};
	struct http_response response;
	struct server server;
	char answer[256], error[256];

	if (curl_api_load(error, sizeof(error))) {
		fprintf(stderr, "libcurl not loadable (%s): the loopback test cannot run\n", error);
		CHECK(0);
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		snprintf(answer, sizeof(answer), "HTTP/1.1 200 OK\r\n%sContent-Length: 0\r\n\r\n",
			 cases[i].headers);
		exchange(answer, &server, NULL, &response);
		if (response.grpc_status != cases[i].status)
			fprintf(stderr, "%s: grpc_status %d\n", cases[i].headers,
				response.grpc_status);
		CHECK(!response.failed && response.grpc_status == cases[i].status);
		CHECK_STR(response.grpc_status_error, cases[i].error);
	}
	curl_api_unload();
}

static void test_pyroscope_service_names(void)
{
	CHECK(pyroscope_service_name_valid("checkout-v2.eu/web_1"));
	CHECK(!pyroscope_service_name_valid("a b"));
	CHECK(!pyroscope_service_name_valid("a{b}"));
	CHECK(!pyroscope_service_name_valid("caf\xc3\xa9"));
}

TEST_MAIN("http", TEST(test_status_classes), TEST(test_grpc_codes), TEST(test_retry_after),
	  TEST(test_plain_result), TEST(test_grpc_result), TEST(test_escape),
	  TEST(test_pyroscope_service_names), TEST(test_loopback_exchange),
	  TEST(test_bounded_answers), TEST(test_redirect_not_followed),
	  TEST(test_grpc_status_parsing))
