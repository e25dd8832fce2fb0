class ResidualLeNet(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  _is_full_backward_hook : Optional[bool]
  conv1 : __torch__.torch.nn.modules.conv.___torch_mangle_9.Conv2d
  res : __torch__.torch.nn.modules.conv.___torch_mangle_28.Conv2d
  conv2 : __torch__.torch.nn.modules.conv.___torch_mangle_10.Conv2d
  fc1 : __torch__.torch.nn.modules.linear.___torch_mangle_11.Linear
  fc2 : __torch__.torch.nn.modules.linear.___torch_mangle_12.Linear
  fc3 : __torch__.torch.nn.modules.linear.___torch_mangle_13.Linear
  def forward(self: __torch__.___torch_mangle_29.ResidualLeNet,
    x: Tensor) -> Tensor:
    _0 = __torch__.torch.nn.functional._max_pool2d
    conv1 = self.conv1
    x0 = __torch__.torch.nn.functional.relu((conv1).forward(x, ), False, )
    res = self.res
    _1 = __torch__.torch.nn.functional.relu((res).forward(x0, ), False, )
    x1 = torch.add(x0, _1)
    x2 = _0(x1, [2, 2], None, [0, 0], [1, 1], False, False, )
    conv2 = self.conv2
    _2 = __torch__.torch.nn.functional.relu((conv2).forward(x2, ), False, )
    x3 = _0(_2, [2, 2], None, [0, 0], [1, 1], False, False, )
    x4 = torch.view(x3, [torch.size(x3, 0), -1])
    fc1 = self.fc1
    x5 = torch.hardtanh((fc1).forward(x4, ), 0., 6.)
    fc2 = self.fc2
    x6 = __torch__.torch.nn.functional.relu((fc2).forward(x5, ), False, )
    fc3 = self.fc3
    return (fc3).forward(x6, )
