"""An ordinary asyncio TCP server (Python's own event loop: epoll, a socketpair for wakeups): each line
gets back "<n>\\n", n counting the lines served since start (state in the handler's closure). It prints
"served <n>" on stdout for every line, as a server logs. argv[1] is the workdir: the port goes to
<workdir>/port, the pid to <workdir>/ready."""
import asyncio
import os
import sys


def main(workdir):
    served = 0

    async def handle(reader, writer):
        nonlocal served
        try:
            while line := await reader.readline():
                served += 1
                print(f"served {served}", flush=True)
                writer.write(f"{served}\n".encode())
                await writer.drain()
        except ConnectionError:
            print("connection reset", flush=True)
        writer.close()

    async def serve():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        with open(os.path.join(workdir, "port"), "w") as f:
            f.write(str(port))
        with open(os.path.join(workdir, ".ready.tmp"), "w") as f:
            f.write(str(os.getpid()))
        os.rename(os.path.join(workdir, ".ready.tmp"), os.path.join(workdir, "ready"))
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main(sys.argv[1])
