/* The floor of fork per connection on this machine: CPU time per
 * fork() + _exit() + waitpid() of a program that does nothing else, and the
 * page faults of each child. run.sh builds it twice (dynamic and -static)
 * and prints "cpu_us_per_fork faults_per_child" for each. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static double us(struct timeval t) { return t.tv_sec * 1e6 + t.tv_usec; }

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    if (n <= 0)
        return 2;
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p == 0)
            _exit(0);
        if (p < 0 || waitpid(p, NULL, 0) != p)
            return 1;
    }
    struct rusage self, kids;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    double cpu = us(self.ru_utime) + us(self.ru_stime) + us(kids.ru_utime) + us(kids.ru_stime);
    printf("%.1f %.1f\n", cpu / n, (double)kids.ru_minflt / n);
    return 0;
}
