"""shared_memory.py: Python's multiprocessing.shared_memory, traced like C.

Creates the object argv[1] (without its leading '/'), writes, closes and
unlinks it. Python's resource tracker (a separate process) watches it too.

Run: python3 shared_memory.py /demo
"""
import sys
from multiprocessing import shared_memory

name = (sys.argv[1] if len(sys.argv) > 1 else "/demo").lstrip("/")
shm = shared_memory.SharedMemory(name=name, create=True, size=4096)
shm.buf[:5] = b"hello"
print(bytes(shm.buf[:5]).decode())
shm.close()
shm.unlink()
