"""A local Runtime API emulator that runs a layer the way Lambda would (`layerpack invoke` / `run`).

rootfs   the runtime's root rebuilt from host files (only its libraries and commands)
sandbox  the bubblewrap command line (pure plan) and its start
staging  layers merged at /opt, the function at /var/task, Lambda's bootstrap search
server   the Runtime API (2018-06-01) and the invoke endpoint, real HTTP on 127.0.0.1
memory   Max Memory Used of the process tree (cgroup, else /proc sampling) and --memory
invoke   one execution environment: cold starts, timeouts, crashes, REPORT lines, findings
"""
