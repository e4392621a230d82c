/*
 * locks-holder: three files in <workdir>, each locked a different way.
 *
 *   flock: flock(LOCK_EX)
 *   posix: fcntl(F_SETLK) write lock on bytes 10..29
 *   ofd:   fcntl(F_OFD_SETLK) read lock on the whole file
 *
 * After restore a child of the restored process (another lock owner) finds every lock held: its own
 * flock(LOCK_EX|LOCK_NB) fails, F_GETLK reports the write lock on 10..29 held by its parent, and
 * F_OFD_GETLK for a write lock reports the read lock.
 */
#include "victim.h"
#include <sys/file.h>
#include <sys/wait.h>

static int open_in(const char *name)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", victim_dir, name);
	return open(path, O_RDWR | O_CREAT, 0600);
}

/* In a child: 0 when every lock is seen held, else a bit per missing lock. */
static int probe_locks(pid_t holder)
{
	int bad = 0;
	int f = open_in("flock");
	if (flock(f, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK)
		bad |= 1;
	int p = open_in("posix");
	struct flock q = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	if (fcntl(p, F_GETLK, &q) != 0 || q.l_type != F_WRLCK || q.l_start != 10 || q.l_len != 20 || q.l_pid != holder)
		bad |= 2;
	int o = open_in("ofd");
	struct flock r = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	if (fcntl(o, F_OFD_GETLK, &r) != 0 || r.l_type != F_RDLCK)
		bad |= 4;
	return bad;
}

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	int f = open_in("flock"), p = open_in("posix"), o = open_in("ofd");
	struct flock w = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 10, .l_len = 20 };
	struct flock r = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	if (f < 0 || p < 0 || o < 0 || flock(f, LOCK_EX) != 0 || fcntl(p, F_SETLK, &w) != 0 || fcntl(o, F_OFD_SETLK, &r) != 0)
		exit(4);
	victim_ready();
	while (!victim_check_requested())
		victim_sleep_ms(20);
	pid_t me = getpid(), child = fork();
	if (child == 0)
		_exit(probe_locks(me));
	int status = 0;
	waitpid(child, &status, 0);
	int bad = WIFEXITED(status) ? WEXITSTATUS(status) : 8;
	if (bad & 1)
		fail("the flock is not held");
	if (bad & 2)
		fail("the POSIX write lock on 10..29 is not held by this process");
	if (bad & 4)
		fail("the OFD read lock is not held");
	if (bad & 8)
		fail("the probing child died");
	victim_finish();
}
