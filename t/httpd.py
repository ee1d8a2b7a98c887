#!/usr/bin/env python3
"""t/httpd.py DIR PORTFILE: a loopback HTTP server for the tests, standing in
for an object store or an upload endpoint.  It listens on 127.0.0.1 only,
on a free port that it writes to PORTFILE, and serves until killed.

PUT /NAME stores the body as DIR/NAME.  A Content-Length is honoured as a
strict server honours it: exactly that many bytes are the body, even when
the client also said Transfer-Encoding: chunked (so the chunk framing is
stored, as it would be there).  Without a Content-Length a chunked body is
decoded.  Content-Range: bytes FIRST-LAST/TOTAL writes the body at FIRST of
the file, for resumed uploads.  ?fail_after=N stores the first N bytes of
the body, then drops the connection, as a broken upload does.

GET /NAME returns the file; HEAD /NAME its size as Content-Length.
"""
import http.server
import os
import re
import sys
import urllib.parse


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def path_of(self):
        name = urllib.parse.urlsplit(self.path).path.lstrip("/")
        if not name or "/" in name or name.startswith("."):
            return None
        return os.path.join(self.server.directory, name)

    def read_chunked(self):
        body = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";")[0], 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(body)
            body += self.rfile.read(size)
            self.rfile.readline()

    def reply(self, code, body=b""):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self):
        path = self.path_of()
        if path is None:
            return self.reply(400)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        fail_after = int(query["fail_after"][0]) if "fail_after" in query else None
        length = self.headers.get("Content-Length")
        if length is not None:
            length = int(length)
            if fail_after is not None and fail_after < length:
                body = self.rfile.read(fail_after)
            else:
                body = self.rfile.read(length)
        elif "chunked" in self.headers.get("Transfer-Encoding", ""):
            body = self.read_chunked()
        else:
            return self.reply(411)
        first = 0
        content_range = self.headers.get("Content-Range")
        if content_range is not None:
            match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", content_range.strip())
            if match is None:
                return self.reply(400)
            first = int(match.group(1))
        mode = "r+b" if os.path.exists(path) and content_range else "wb"
        with open(path, mode) as f:
            f.seek(first)
            f.write(body)
        if fail_after is not None and length is not None and fail_after < length:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.reply(201 if content_range is None else 200)

    def do_GET(self):
        path = self.path_of()
        if path is None or not os.path.isfile(path):
            return self.reply(404)
        with open(path, "rb") as f:
            self.reply(200, f.read())

    def do_HEAD(self):
        path = self.path_of()
        if path is None or not os.path.isfile(path):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(os.path.getsize(path)))
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    directory, portfile = sys.argv[1], sys.argv[2]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.directory = directory
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(portfile + ".tmp", portfile)
    server.serve_forever()


if __name__ == "__main__":
    main()
