"""faultproxy - a TCP proxy on 127.0.0.1 that breaks links on demand.

    p = FaultProxy(server.port).start()     # p.port: connect here
    p.cut()          # every link ends at once with a RST, both sides
    p.blackhole()    # every open link goes dead: nothing passes either way,
                     # no FIN, no RST (a new link passes again)
    p.delay(0.2)     # each chunk waits 0.2 s before it is passed on
    p.stop()

Standard library only; one thread accepts, one thread per link pumps both
directions.  It binds 127.0.0.1 only and stops everything it started.
"""

import select
import socket
import struct
import threading
import time


class _Link:
    def __init__(self, client, server):
        self.client = client
        self.server = server
        self.dead = False     # blackholed: read and drop, pass nothing
        self.closed = False


class FaultProxy:
    def __init__(self, target_port, target_host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.lock = threading.Lock()
        self.links = []
        self.listener = None
        self.port = None
        self.accepts = 0
        self._delay = 0.0
        self._stop = threading.Event()
        self._threads = []

    def start(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        s.settimeout(0.1)
        self.listener = s
        self.port = s.getsockname()[1]
        t = threading.Thread(target=self._accept, daemon=True,
                             name="faultproxy-accept")
        t.start()
        self._threads.append(t)
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- faults ------------------------------------------------------------

    def cut(self):
        """End every open link with a RST to both sides; returns how many."""
        with self.lock:
            links, self.links = self.links, []
        for l in links:
            self._close(l, rst=True)
        return len(links)

    def blackhole(self):
        """Every open link passes nothing from now on and is never closed
        by the proxy (until cut() or stop()); returns how many."""
        with self.lock:
            for l in self.links:
                l.dead = True
            return len(self.links)

    def delay(self, seconds):
        self._delay = float(seconds)

    def open_links(self):
        with self.lock:
            return len([l for l in self.links if not l.closed])

    def stop(self):
        self._stop.set()
        self.cut()
        if self.listener:
            self.listener.close()
        for t in self._threads:
            t.join(5)

    # -- inside ------------------------------------------------------------

    def _accept(self):
        while not self._stop.is_set():
            try:
                c, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                s = socket.create_connection(self.target, timeout=5)
            except OSError:
                self._rst(c)
                continue
            for x in (c, s):
                x.setblocking(False)
                x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(c, s)
            with self.lock:
                self.links.append(link)
                self.accepts += 1
            t = threading.Thread(target=self._pump, args=(link,), daemon=True,
                                 name="faultproxy-link")
            t.start()
            self._threads.append(t)

    @staticmethod
    def _rst(sock):
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass

    def _close(self, link, rst):
        if link.closed:
            return
        link.closed = True
        for x in (link.client, link.server):
            if rst:
                self._rst(x)
            else:
                try:
                    x.close()
                except OSError:
                    pass

    def _send_all(self, link, sock, data):
        while data and not link.closed:
            try:
                n = sock.send(data)
                data = data[n:]
            except BlockingIOError:
                select.select([], [sock], [], 0.1)
            except OSError:
                return False
        return True

    def _pump(self, link):
        peer = {link.client: link.server, link.server: link.client}
        while not link.closed and not self._stop.is_set():
            try:
                r, _, _ = select.select([link.client, link.server], [], [], 0.1)
            except (OSError, ValueError):
                break
            for src in r:
                try:
                    data = src.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    if not link.dead:
                        # an orderly end passes on as one
                        with self.lock:
                            if link in self.links:
                                self.links.remove(link)
                        self._close(link, rst=False)
                    else:
                        # a dead link tells nobody anything in time: the
                        # other side learns of it only as a reset
                        with self.lock:
                            if link in self.links:
                                self.links.remove(link)
                        self._close(link, rst=True)
                    break
                if link.dead:
                    continue
                if self._delay:
                    time.sleep(self._delay)
                if not self._send_all(link, peer[src], data):
                    with self.lock:
                        if link in self.links:
                            self.links.remove(link)
                    self._close(link, rst=True)
                    break
