"""Protocol-faithful fakes of remote provider APIs, served over real HTTP on 127.0.0.1."""
