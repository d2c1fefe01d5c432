// The tests measure process-wide things (open file descriptors, managed heap) and push thousands of sockets and
// hundreds of MiB through loopback on a small machine: they run one at a time so that they neither disturb each
// other's measurements nor compete for the two cores.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
