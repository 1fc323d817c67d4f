"""The consumer of the latency baseline: BRPOP each message from one list and LPUSH it
to another at once.

    python -m benchmarks.redis_echo --url redis://127.0.0.1:6379/12 --count 200
"""

import argparse

import redis

REQUESTS = "bench.echo.requests"
REPLIES = "bench.echo.replies"
TIMEOUT_S = 60


def echo(url: str, count: int) -> None:
    """Echo ``count`` messages; stop early when none arrives within TIMEOUT_S."""
    client = redis.Redis.from_url(url)
    try:
        for _ in range(count):
            item = client.brpop([REQUESTS], timeout=TIMEOUT_S)
            if item is None:
                return
            client.lpush(REPLIES, item[1])
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Echo messages between two Redis lists.")
    parser.add_argument("--url", required=True, help="Redis database URL")
    parser.add_argument("--count", type=int, required=True, help="messages to echo")
    args = parser.parse_args()
    echo(args.url, args.count)


if __name__ == "__main__":
    main()
